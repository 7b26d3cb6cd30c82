"""``python -m reko_fhir`` runs the command line."""

from reko_fhir.cli import main

main()
