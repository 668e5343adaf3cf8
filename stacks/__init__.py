"""CDK stacks (deployment units) and the constructs they are composed of."""
