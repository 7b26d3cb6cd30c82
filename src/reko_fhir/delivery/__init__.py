"""Delivery: the outbox worker, retry policies, targets (EHR FHIR servers, RIVTA services)."""
