"""User commands around a deployment: validate, manifests, plan, preflight, smoke, rehearse."""
