#!/usr/bin/env python3
"""The floor: an aws-cdk-lib app with one empty stack, synthesized by the same CLI.

Without arguments it is what `cdk init` gives: aws-cdk-lib's defaults, which include the
built-in CloudFormation validation of every template (~1 s here even for an empty stack).
With `--bare` that validation is off, as in our app (cfn-lint runs in `make test`
instead), so the floor holds only what every jsii app pays: Node, the jsii kernel,
aws-cdk-lib and one synth.
"""

import sys

import aws_cdk as cdk

app = cdk.App(builtin_cloud_formation_validation="--bare" not in sys.argv[1:])
cdk.Stack(app, "Empty")
app.synth()
