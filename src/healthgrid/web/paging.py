"""Page arithmetic for paged listings (1-based page numbers in URLs, offsets in queries)."""

from __future__ import annotations

from dataclasses import dataclass

PAGE_SIZE = 20


@dataclass(frozen=True)
class Pager:
    page: int
    size: int = PAGE_SIZE
    total: int = 0

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def pages(self) -> int:
        # An empty listing still has one (empty) page, so "page 1 of 1" reads naturally.
        return max(1, -(-self.total // self.size))

    @property
    def has_prev(self) -> bool:
        return self.page > 1

    @property
    def has_next(self) -> bool:
        return self.page < self.pages

    def with_total(self, total: int) -> Pager:
        return Pager(self.page, self.size, total)
