"""A fake Hugging Face hub on 127.0.0.1: serves model repositories from folders the way the hub
does for `huggingface_hub.snapshot_download` (which `HF_ENDPOINT` points here):

- `GET /api/models/{repo}/revision/{rev}`: the repo's info, its commit in `sha`;
- `GET /api/models/{repo}/tree/{rev}`: the files, with size and blob id (`?recursive=...`);
- `HEAD|GET /{repo}/resolve/{rev}/{file}`: the file, with `X-Repo-Commit`, `ETag` and
  `Content-Length` as the hub sends them (no Xet, no LFS redirects: the plain path).

Any other repo is a 404 with `X-Error-Code: RepoNotFound`, as the hub answers. `requests`
records every path asked for.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from aiohttp import web

from tests.fakeapi import ThreadedServer

#: The commit every served repository is at.
COMMIT = "0123456789abcdef0123456789abcdef01234567"


class FakeHub(ThreadedServer):
    """Repos (`Systran/faster-whisper-tiny` -> a model folder), served on 127.0.0.1."""

    def __init__(self, repos: dict[str, Path]) -> None:
        super().__init__()
        self.repos = repos
        self.requests: list[str] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/models/{org}/{name}/revision/{rev}", self._info)
        app.router.add_get("/api/models/{org}/{name}/tree/{rev}", self._tree)
        app.router.add_route("*", "/{org}/{name}/resolve/{rev}/{file:.+}", self._file)
        return app

    def _folder(self, request: web.Request) -> Path:
        self.requests.append(f"{request.method} {request.path}")
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        if repo not in self.repos:
            raise web.HTTPNotFound(
                headers={"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"},
                text='{"error":"Repository not found"}',
            )
        return self.repos[repo]

    async def _info(self, request: web.Request) -> web.Response:
        folder = self._folder(request)
        repo = f"{request.match_info['org']}/{request.match_info['name']}"
        siblings = [{"rfilename": p.name} for p in sorted(folder.iterdir()) if p.is_file()]
        return web.json_response({"id": repo, "modelId": repo, "sha": COMMIT,
                                  "siblings": siblings, "private": False})  # fmt: skip

    async def _tree(self, request: web.Request) -> web.Response:
        files = [p for p in sorted(self._folder(request).iterdir()) if p.is_file()]
        return web.json_response(
            [
                {"type": "file", "path": p.name, "size": p.stat().st_size, "oid": _oid(p)}
                for p in files
            ]
        )

    async def _file(self, request: web.Request) -> web.StreamResponse:
        path = self._folder(request) / request.match_info["file"]
        if not path.is_file():
            raise web.HTTPNotFound(headers={"X-Error-Code": "EntryNotFound"})
        headers = {"X-Repo-Commit": COMMIT, "ETag": f'"{_oid(path)}"',
                   "Content-Length": str(path.stat().st_size)}  # fmt: skip
        if request.method == "HEAD":
            return web.Response(headers=headers)
        return web.FileResponse(path, headers=headers)


def _oid(path: Path) -> str:
    """The git blob id the hub gives a file (sha1 of `blob <size>\\0<content>`)."""
    data = path.read_bytes()
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
