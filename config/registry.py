"""ECR repositories for the Dynamo images we may build ourselves."""

from __future__ import annotations

from pydantic import Field

from config.base import StrictModel


class RegistryConfig(StrictModel):
    # Release tags kept per repository; older ones expire (tags are immutable, so each
    # rebuild is a new tag and the count grows without a limit).
    keep_release_images: int = Field(
        default=20, ge=1, le=1000, description="Tagged images kept per repository; older ones expire."
    )
    untagged_expiry_days: int = Field(
        default=1, ge=1, le=365, description="Days before untagged images expire."
    )
