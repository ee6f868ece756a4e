"""The patient's consent, per purpose: recorded, checked before what it allows, withdrawn."""
