#!/usr/bin/env python3
"""The floor: an aws-cdk-lib app with one empty stack, synthesized by the same CLI."""

import aws_cdk as cdk

app = cdk.App()
cdk.Stack(app, "Empty")
app.synth()
