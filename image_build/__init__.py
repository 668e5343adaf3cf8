"""Build Dynamo runtime images in CodeBuild and follow the build from a terminal.

`python -m image_build start --framework vllm [--efa] [--wait]`; see the README section "Delivery".
"""
