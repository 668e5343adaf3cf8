"""cdk8s charts: pure functions of the validated config (and explicit inputs), no AWS calls."""
