"""A language model's answer that quotes a destructive command: the sentence is left out
(even beside a valid citation, in a code block, in lower case or disguised with look-alike
characters), the answer says that it was, and nothing runs. Prose that only sounds like
a command (a reboot, a dropped deploy) is kept."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agents.destructive import destructive_commands
from agents.llm import LLM, LLMSettings
from agents.retriever import Retriever
from agents.retriever_llm import check_reply, validate_reply
from console.domain import ChangeEvent, Evidence
from console.runtime import Runtime
from tests.llm_server import FakeLLMServer

FACTS = (Evidence("change", "deploy payments v41 -> v42", "change:chg-1"),
         Evidence("alert", "DiskFull firing on search", "signal:abc"))

# The commands the issue names, and their kin, as a model might quote them.
DESTRUCTIVE = [
    "rm -rf /var/lib/postgresql", "sudo rm -fr /", "rm --recursive --force ~/data",
    "rm /etc/passwd", "find /var/log -type f -delete", "shred -u /dev/sda",
    "DROP TABLE users;", "DROP DATABASE payments", "ALTER TABLE orders DROP COLUMN id",
    "TRUNCATE TABLE sessions", "DELETE FROM users;", "DELETE FROM users",
    "UPDATE accounts SET balance = 0", "kubectl delete pod cart-0",
    "kubectl -n shop delete deployment cart", "kubectl drain node-3",
    "kubectl scale deploy/cart --replicas=0", "helm uninstall payments",
    "mkfs.ext4 /dev/sdb1", "mkfs -t xfs /dev/nvme0n1", "dd if=/dev/zero of=/dev/sda bs=1M",
    "echo x > /dev/sda", "shutdown -h now", "shutdown now", "sudo reboot -f",
    "poweroff --force", "systemctl poweroff", "init 0", ":(){ :|:& };:",
    "chmod -R 777 /", "chmod 0777 /etc", "chown -R nobody /", "kill -9 -1",
    "iptables -F", "git push --force origin main", "git reset --hard HEAD~3",
    "git clean -fdx", "docker system prune -af", "docker rm -f db",
    "terraform destroy -auto-approve", "aws s3 rm s3://backups --recursive",
    "gcloud compute instances delete web-1", "redis-cli FLUSHALL", "db.dropDatabase()",
    "format c:", "del /s /q C:\\data", "Remove-Item C:\\data -Recurse -Force",
]
# ...and prose that must stay: it only talks about such things.
PROSE = [
    "A reboot of search fixed the disk alert [2].",
    "The shutdown of search at 02:10 preceded the alert [2].",
    "The v42 deploy was dropped from the release [1].",
    "Rows were deleted from the cache by the job [2].",
    "Old logs were removed and the disk freed up [2].",
    "Payments will update the table of rates after v42 [1].",
    "The rm of old files happened before the alert [2].",
    "Truncate the report to what matters: payments changed [1].",
]


@pytest.mark.parametrize("command", DESTRUCTIVE)
def test_a_destructive_command_beside_a_citation_is_left_out_and_said(command: str) -> None:
    reply = (f"The disk on search is full [2]. Free it with `{command}` right away [2]. "
             "Payments changed [1].")
    checked = validate_reply(reply, FACTS)
    assert checked is not None
    text, cited = checked
    *kept, notice = text.splitlines()
    assert kept == ["The disk on search is full [2].", "Payments changed [1]."]
    assert notice.startswith("(1 sentence of the language model's answer quoted a "
                             "destructive command (")
    assert notice.endswith(") and was left out; nothing was run.)")
    assert cited == (2, 1)


@pytest.mark.parametrize("sentence", PROSE)
def test_prose_about_such_things_is_kept(sentence: str) -> None:
    assert destructive_commands(sentence) == []
    assert validate_reply(sentence, FACTS) == (sentence, tuple(
        int(n) for n in sentence.split("[")[1].split("]")[0].split(",")))


@pytest.mark.parametrize("reply", [
    "Clear it out [2]:\n```sql\ndelete from users; -- [2]\n```\nPayments changed [1].",
    "Clear it out [2]:\n    drop table users [2]\nPayments changed [1].",
    "Free the disk: r\u200bm -rf /data [2]. Payments changed [1].",  # zero-width space
    "Free the disk: \uff52\uff4d -rf /data [2]. Payments changed [1].",  # full-width rm
    "Free the disk: rm \u2013rf /data [2]. Payments changed [1].",  # an en dash
])
def test_disguised_or_fenced_commands_are_left_out_too(reply: str) -> None:
    checked = check_reply(reply, FACTS)
    assert checked.withheld
    assert "Payments changed [1]." in checked.text
    assert "/data" not in checked.text
    assert "users" not in checked.text


def test_a_reply_that_is_all_destructive_falls_back_and_the_note_says_why(
        runtime: Runtime) -> None:
    """Through `ask`: the template answer stands, the note names what was left out, and
    nothing was proposed, approved or run."""
    service = runtime.service
    service.add_user("bob", "operator", as_user="alice")
    now = runtime.clock.now()
    service.ingest(changes=[ChangeEvent("payments", "deploy", "deploy payments v41 -> v42",
                                        now - timedelta(minutes=20))])
    audit_before = len(service.audit_entries())
    with FakeLLMServer(["Roll it back with `kubectl delete deployment payments` [1].",
                        "Payments was deployed [1]. To undo: `DROP TABLE payments;` [1]."]
                       ) as fake:
        llm = LLM(LLMSettings(base_url=fake.url, model="test-model", timeout=5.0))
        ask = Retriever(service, None, llm).ask
        first = ask("what changed in the last hour?", user="bob")
        second = ask("what changed in the last hour?", user="bob")
    assert first.via == "template"
    assert "kubectl" not in first.text
    assert "destructive command (kubectl delete)" in first.note
    assert "template answer used" in first.note
    assert second.via == "llm"
    kept, notice = second.text.splitlines()
    assert kept == "Payments was deployed [1]."
    assert "destructive command (DROP)" in notice
    assert "destructive command (DROP)" in second.note
    assert service.engine.recommendations() == []
    assert service.engine.executions() == []
    assert len(service.audit_entries()) == audit_before


WORDS = st.sampled_from(["the", "disk", "on", "search", "was", "full", "payments", "deploy",
                         "reboot", "shutdown", "delete", "drop", "table", "from", "update",
                         "set", "rows", "rm", "dd", "kill", "format", "halt", "users",
                         "cleared", "after", "v42", "errors", "rose", "old", "files"])


@settings(max_examples=200, deadline=None)
@given(prefix=st.lists(WORDS, max_size=8), suffix=st.lists(WORDS, max_size=8),
       command=st.sampled_from(DESTRUCTIVE), quoted=st.booleans(),
       cite=st.sampled_from(["[1]", "[2]", "[1][2]", "[1, 2]"]))
def test_no_cited_sentence_ever_carries_a_destructive_command(
        prefix: list[str], suffix: list[str], command: str, quoted: bool, cite: str) -> None:
    shown = f"`{command}`" if quoted else command
    reply = " ".join([*prefix, shown, *suffix, cite]) + ". Payments changed [1]."
    checked = check_reply(reply, FACTS)
    assert command not in checked.text
    assert checked.text == "Payments changed [1]."
    assert len(checked.withheld) == 1


@settings(max_examples=200, deadline=None)
@given(words=st.lists(WORDS, min_size=1, max_size=14))
def test_prose_from_the_same_words_is_never_flagged(words: list[str]) -> None:
    sentence = " ".join(words).capitalize() + " [2]."
    checked = check_reply(sentence, FACTS)
    assert (checked.text, checked.withheld) == (sentence, ())
