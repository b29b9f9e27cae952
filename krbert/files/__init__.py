"""Files, local or gs://: inputs, outputs written whole, reading, Cloud Storage."""
