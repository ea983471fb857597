"""The client side of `csm-batch`: commands that talk to a running API over HTTP (CSM_API_URL,
CSM_API_KEY). It imports nothing of the service but the names in jobs.formats and jobs.status."""
