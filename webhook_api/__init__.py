"""FastAPI service that receives webhooks from the media stack and logs them to ``webhook_log``."""
