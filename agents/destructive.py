"""Commands that destroy data or stop machines, found in text a language model wrote.

A model's answer is only text: nothing in Watchfloor runs it. But an operator reading
"free the disk with `rm -rf /var/lib/postgresql` [2]" at 3 a.m. might paste it into a
shell, and a cited fact makes the line look vouched for. So the retriever leaves out any
sentence that quotes such a command and says that it did (agents/retriever_llm.py).

The patterns aim at commands, not prose: a shell command counts with the options or
arguments that make it harmful (`rm -rf`, `shutdown -h now`, `dd if=`), so "a reboot
fixed it" or "the deploy was dropped" pass. SQL counts when written as SQL: in capitals
anywhere, or in any case inside code (a code span, or a line the caller knows is code).
Before matching, the text is folded the way a terminal would read it after a paste:
compatibility forms (full-width letters), dash look-alikes and invisible format
characters (zero-width spaces) are normalized.
"""

from __future__ import annotations

import re
import unicodedata

# label shown to the operator -> pattern (matched without regard to case)
SHELL: dict[str, str] = {
    "rm": r"\brm\s+(?:-{1,2}[a-z]|/|~|\*|\$)",
    "find -delete": r"\bfind\s+\S.*\s-delete\b",
    "shred": r"\b(?:shred|wipefs|blkdiscard)\s+\S",
    "mkfs": r"\bmkfs(?:\.\w+)?\b",
    "dd": r"\bdd\s+(?:\S+\s+){0,4}?(?:if|of)=",
    "partition tool": r"\b(?:fdisk|sfdisk|gdisk|parted)\s+/dev/",
    "write to a disk device": r">\s*/dev/(?:sd|hd|vd|xvd|nvme|mmcblk|disk)",
    "shutdown": r"\b(?:shutdown|poweroff|halt|reboot)\s+(?:-{1,2}[a-z]|now\b)|"
                r"\bshutdown\s+(?:\+\d+|\d{1,2}:\d{2})\b",
    "systemctl poweroff": r"\bsystemctl\s+(?:poweroff|reboot|halt|kexec|emergency|rescue)\b",
    "init 0/6": r"\b(?:tel)?init\s+[06]\b",
    "fork bomb": r":\s*\(\s*\)\s*\{",
    "chmod 777": r"\bchmod\s+(?:-\S+\s+)*0?777\b",
    "recursive chmod/chown of /": r"\bch(?:mod|own|grp)\s+(?:-\S*R\S*|--recursive)\s+"
                                  r"(?:\S+\s+)?/(?:\s|$|\*|[`'\"])",
    "kill every process": r"\bkill\s+-(?:9|KILL|SIGKILL)\s+-1\b",
    "firewall flush": r"\b(?:iptables|ip6tables|nft)\s+(?:-F|--flush|flush\s+ruleset)\b",
    "mv to /dev/null": r"\bmv\s+\S+\s+/dev/null\b",
    "git push --force": r"\bgit\s+push\s+(?:\S+\s+){0,3}?(?:-f|--force)\b",
    "git reset --hard": r"\bgit\s+reset\s+--hard\b",
    "git clean -f": r"\bgit\s+clean\s+-\S*f",
    "kubectl delete": r"\bkubectl\s+(?:\S+\s+){0,3}?(?:delete|drain)\b",
    "kubectl scale to 0": r"\bkubectl\s+scale\b.*--replicas[= ]0\b",
    "helm uninstall": r"\bhelm\s+(?:uninstall|delete)\b",
    "docker rm": r"\bdocker\s+(?:rm|rmi|kill|(?:system|volume|image|container|network)"
                 r"\s+(?:prune|rm))\b",
    "terraform destroy": r"\bterraform\s+(?:destroy\b|apply\b.*\s-destroy\b)",
    "cloud delete": r"\b(?:aws\s+s3\s+(?:rm|rb)|aws\s+ec2\s+terminate-instances|"
                    r"(?:gcloud|az)\s+(?:\S+\s+){0,4}?delete)\b",
    "redis flush": r"\bflush(?:all|db)\b",
    "database drop": r"\bdb\.dropDatabase\s*\(|\bdropdb\s+\S",
    "format a drive": r"\bformat\s+[a-z]:",
    "windows delete": r"\b(?:del|erase)\s+/[sqf]\b|\b(?:rd|rmdir)\s+/s\b|"
                      r"\bRemove-Item\b.*\s-Recurse\b",
}

# SQL: in capitals anywhere, in any case inside code
SQL: dict[str, str] = {
    "DROP": r"\bDROP\s+(?:TABLE|DATABASE|SCHEMA|KEYSPACE|COLLECTION|INDEX|VIEW|USER|ROLE|"
            r"OWNED)\b|\bALTER\s+TABLE\s+\S+\s+DROP\b",
    "TRUNCATE": r"\bTRUNCATE\s+(?:TABLE\s+)?[\w.\"`\[\]]+",
    "DELETE without WHERE": r"\bDELETE\s+FROM\s+[\w.\"`\[\]]+(?![^;]*\bWHERE\b)",
    "UPDATE without WHERE": r"\bUPDATE\s+[\w.\"`\[\]]+\s+SET\b(?![^;]*\bWHERE\b)",
}

_SHELL = [(label, re.compile(p, re.I)) for label, p in SHELL.items()]
_SQL_CAPS = [(label, re.compile(p)) for label, p in SQL.items()]
_SQL_ANY = [(label, re.compile(p, re.I)) for label, p in SQL.items()]
_CODE = re.compile(r"`+([^`]+)`+")
_DASHES = dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe63\uff0d"),
                        "-")


def _folded(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_DASHES)
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def destructive_commands(text: str, *, code: bool = False) -> list[str]:
    """The labels of the destructive commands `text` quotes, in pattern order; empty
    when it quotes none. `code`: the whole text is code (a line of a fenced block)."""
    folded = _folded(text)
    found = [label for label, pattern in _SHELL if pattern.search(folded)]
    found += [label for label, pattern in _SQL_CAPS if pattern.search(folded)]
    spans = [folded] if code else _CODE.findall(folded)
    found += [label for label, pattern in _SQL_ANY
              if label not in found and any(pattern.search(span) for span in spans)]
    return found
