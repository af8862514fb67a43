"""The model zoo: ``spvis models`` lists it; ``spvis.load(NAME)`` / ``spvis infer --model NAME`` fetch, verify,
convert and cache an entry on first use (``spvis.zoo.cache``)."""

from spvis.zoo.cache import ensure_model, is_cached, spvis_home
from spvis.zoo.registry import ZooEntry, get_entry, list_entries

__all__ = ["ZooEntry", "ensure_model", "get_entry", "is_cached", "list_entries", "spvis_home"]
