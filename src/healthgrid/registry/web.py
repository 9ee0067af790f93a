"""Web pages of the registry (placeholder until written)."""
from pathlib import Path

from fastapi import APIRouter

TEMPLATES = Path(__file__).parent / "templates"
router = APIRouter()
