"""The processes that run notebooks (the nightly job, ``cryptosweep report`` and
``walkforward``) import papermill, nbformat and nbconvert without the second and a half that
jsonschema's optional IRI format checker costs.

nbformat validates every notebook it reads or writes with jsonschema. jsonschema's
``format-nongpl`` extra (which jupyter-events requires, so it is installed) brings
``rfc3987-syntax``, and importing that compiles some forty Earley grammars: 1.4 to 1.7 s on a
2-core machine, in each such process, twice a night (jsonschema's issue 1428; the package is
unmaintained). The notebook schema has no ``iri`` or ``iri-reference`` format, so that checker
never runs here. :func:`skip_iri_grammars` marks the module absent before jsonschema is
imported; jsonschema then leaves those two formats unchecked, as it does wherever the extra is
not installed. Only entry points call it, and the kernels they start for our notebooks
(:data:`KERNEL_LAUNCHER`: plotly's notebook renderer imports nbformat, 1.5 to 2.5 s of every
report): a user's own process, and a JupyterLab kernel, are left as they are.
"""

from __future__ import annotations

import sys

#: The module whose import compiles the IRI grammars.
IRI_GRAMMARS = "rfc3987_syntax"


def skip_iri_grammars() -> None:
    """Mark :data:`IRI_GRAMMARS` absent in this process, unless jsonschema (or the module
    itself) is already imported: then it changes nothing."""
    if "jsonschema" not in sys.modules:
        sys.modules.setdefault(IRI_GRAMMARS, None)  # type: ignore[arg-type]


#: What a kernel that papermill starts for our notebooks runs, as ``python -c`` (its arguments
#: follow): ipykernel's own launcher (``ipykernel_launcher``: the working folder leaves
#: ``sys.path`` while ipykernel is imported; IPython puts it back) with :data:`IRI_GRAMMARS`
#: marked absent first, as :func:`skip_iri_grammars` does in the entry points.
KERNEL_LAUNCHER = f"""\
import sys
from pathlib import Path
if sys.path[0] == "" or Path(sys.path[0]) == Path.cwd():
    del sys.path[0]
sys.modules.setdefault({IRI_GRAMMARS!r}, None)
from ipykernel import kernelapp
kernelapp.launch_new_instance()
"""
