"""AWS commercial regions with the zone letters an ordinary account can use.

Kept as data so AZ names are checked offline (synth never looks them up). A zone letter
that is missing here for a region gives a clear error naming the allowed letters; extend
this table if your account has more.
"""

from __future__ import annotations

ZONE_LETTERS: dict[str, str] = {
    "us-east-1": "abcdef",
    "us-east-2": "abc",
    "us-west-1": "abc",
    "us-west-2": "abcd",
    "ca-central-1": "abd",
    "sa-east-1": "abc",
    "eu-west-1": "abc",
    "eu-west-2": "abc",
    "eu-west-3": "abc",
    "eu-central-1": "abc",
    "eu-central-2": "abc",
    "eu-north-1": "abc",
    "eu-south-1": "abc",
    "eu-south-2": "abc",
    "ap-south-1": "abc",
    "ap-south-2": "abc",
    "ap-northeast-1": "acd",
    "ap-northeast-2": "abcd",
    "ap-northeast-3": "abc",
    "ap-southeast-1": "abc",
    "ap-southeast-2": "abc",
    "ap-southeast-3": "abc",
    "ap-southeast-4": "abc",
    "ap-east-1": "abc",
    "me-central-1": "abc",
    "me-south-1": "abc",
    "il-central-1": "abc",
    "af-south-1": "abc",
}
