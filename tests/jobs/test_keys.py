"""Revoking keys by id or name: the row stays, a shared name is never guessed."""
import pytest

from jobs.keys import KeyNotFound, create_key, find_key, revoke_key


def test_revoke_by_name_or_id_keeps_the_row_and_the_first_time(sessions):
    with sessions.begin() as session:
        alice, alice_key = create_key(session, "alice")
        bob, _ = create_key(session, "bob")
    with sessions.begin() as session:
        first = revoke_key(session, "alice").revoked_at
    with sessions.begin() as session:
        assert revoke_key(session, str(alice.id)).revoked_at == first
        assert find_key(session, alice_key).revoked_at == first
        assert session.get(type(bob), bob.id).revoked_at is None


def test_a_shared_name_or_an_unknown_one_is_refused(sessions):
    with sessions.begin() as session:
        ids = [create_key(session, "ci")[0].id for _ in range(2)]
    with sessions.begin() as session:
        with pytest.raises(KeyNotFound, match=f"ids {ids[0]}, {ids[1]}"):
            revoke_key(session, "ci")
        with pytest.raises(KeyNotFound):
            revoke_key(session, "nobody")
        with pytest.raises(KeyNotFound):
            revoke_key(session, "999999")
        assert revoke_key(session, str(ids[1])).revoked_at is not None


def test_a_name_made_of_digits_is_never_taken_for_another_keys_id(sessions):
    with sessions.begin() as session:
        first, _ = create_key(session, "ops")
        named, _ = create_key(session, str(first.id))  # a key named like the other's id
        dated, _ = create_key(session, "2026")
    with sessions.begin() as session:
        with pytest.raises(KeyNotFound, match=f"ids {first.id}, {named.id}"):
            revoke_key(session, str(first.id))
        assert revoke_key(session, "2026").id == dated.id
        for odd in ("²", "9" * 30):  # not an id: refused by name, not a crash
            with pytest.raises(KeyNotFound):
                revoke_key(session, odd)
        assert session.get(type(first), first.id).revoked_at is None
