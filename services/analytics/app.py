from fastapi import FastAPI

from jinji.service import build_service
from services.analytics.settings import AnalyticsSettings
from services.registry import SPECS


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    return build_service(SPECS["analytics"], settings or AnalyticsSettings())
