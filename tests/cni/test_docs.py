"""odpctl-cni(1) documents every error code the plugin can give."""

from __future__ import annotations

from odpctl.cni import spec
from odpctl.commands import docgen, manpages


def test_every_error_code_is_documented() -> None:
    codes = {
        value for name, value in vars(spec).items() if name.isupper() and isinstance(value, int)
    }
    assert codes == set(manpages.CNI_ERRORS)
    page = (docgen.ROOT / "man" / "odpctl-cni.1").read_text()
    for code in codes:
        assert f".TP\n\\fB{code}\\fR\n" in page
