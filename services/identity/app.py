from fastapi import FastAPI

from jinji.service import build_service
from services.identity.settings import IdentitySettings
from services.registry import SPECS


def create_app(settings: IdentitySettings | None = None) -> FastAPI:
    return build_service(SPECS["identity"], settings or IdentitySettings())
