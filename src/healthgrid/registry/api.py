"""REST API of the registry (placeholder until written)."""
from fastapi import APIRouter

router = APIRouter()
