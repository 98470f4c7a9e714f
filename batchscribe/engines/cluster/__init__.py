"""`--ray`: the local engine on a pool of Ray actors."""
