"""Who may decide an item: the rules every entry point (queue, API, pages) applies alike.

- Trusted items (gold training, gold dev and test sets) are never labelled or reviewed through
  the tool, by anyone: the dev set calibrates the model and measures harm, the test set gives
  the reported F1, so changing them from the queue would rewrite the yardstick. Admins change
  them by re-importing, which appends a label event.
- An annotator decides (labels, skips) only the item the queue handed them: the one they hold
  the lease on. With an overlap above 1 the queue hands each annotator the item in turn, under
  the same lease. A lease that ran out still counts while nobody else has taken the item
  (work done is not thrown away); once another annotator holds it, or the annotator moved on
  to another item, the decision is refused.
- Reviewers and admins decide any item of the projects they may see (membership is checked
  where the item is looked up).
"""

from __future__ import annotations

from app.models import REVIEWABLE_KINDS, DatasetKind, Item, User
from app.services.queue import DecisionError, StaleAction

TRUSTED_NAMES = {
    DatasetKind.gold_train: "the gold training set",
    DatasetKind.gold_dev: "the gold dev set",
    DatasetKind.test: "the test set",
}


class NotAllowed(DecisionError):
    """Nobody may make this change through the tool: a 403."""


class NotHolder(StaleAction):
    """The annotator does not hold the item (never served, or another holds it now): a 409."""


def check_changeable(item: Item) -> None:
    """Refuse items of the trusted sets, whoever asks."""
    if item.dataset_kind not in REVIEWABLE_KINDS:
        where = TRUSTED_NAMES.get(DatasetKind(item.dataset_kind), item.dataset_kind)
        raise NotAllowed(f"item {item.id} is in {where}: change it by re-importing")


def check_holder(item: Item, user: User) -> None:
    """Refuse an annotator's decision on an item the queue did not hand them (or no longer
    does); call it with the item locked, so that the lease seen is the current one."""
    from app.services.reviews import can_review  # reviews imports decisions, which calls this

    if not can_review(user) and item.leased_by_id != user.id:
        raise NotHolder(f"you do not hold item {item.id}: take it from the queue")


def check_may_decide(item: Item, user: User) -> None:
    """Both checks, for a skip (a label checks the holder only once the item is known to be
    still pending, so that a decided item reads as decided)."""
    check_changeable(item)
    check_holder(item, user)
