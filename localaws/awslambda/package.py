"""Deployment packages: the .zip file that CreateFunction uploads."""
from __future__ import annotations

import io
import zipfile


def zip_package(files: dict[str, str | bytes]) -> bytes:
    """Zip ``{"lambda_function.py": source, ...}`` into a deployment package.

    On AWS the handler file sits at the root of the .zip, and
    ``Handler="lambda_function.lambda_handler"`` names file and function.
    Entries get a fixed timestamp, so the same sources give the same bytes
    (and the same ``CodeSha256``).
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            data = files[name]
            archive.writestr(info, data.encode() if isinstance(data, str) else data)
    return buffer.getvalue()
