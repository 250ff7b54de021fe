"""The kits' base test classes: never collected themselves, every subclass collected."""

from __future__ import annotations

from typing import Any, ClassVar


class CollectedSubclasses:
    """pytest collects every subclass (whatever ``python_classes`` says, as long as its name is
    collected) and never the kit's own base class (``__test__ = False``)."""

    __test__: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "__test__" not in cls.__dict__:
            cls.__test__ = True
