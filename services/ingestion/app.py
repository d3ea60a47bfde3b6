from fastapi import FastAPI

from jinji.service import build_service
from services.ingestion.settings import IngestionSettings
from services.registry import SPECS


def create_app(settings: IngestionSettings | None = None) -> FastAPI:
    return build_service(SPECS["ingestion"], settings or IngestionSettings())
