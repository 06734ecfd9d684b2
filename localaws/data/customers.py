"""Customer records with labelled near-duplicates: the input of a record-matching (FindMatches-style) lesson.

A customer table fed by several systems (a web shop, a call centre, a
loyalty card) holds the same person more than once, never quite the same
way: a typo in the surname, first and last name swapped, the e-mail missing
in one system, the phone written ``(555) 010-4477`` here and ``5550104477``
there. :func:`customer_records` makes such a table, deterministically (same
seed, same records), and *labels* it: every record carries the
``entity_id`` of the person it describes, so a matcher's clusters can be
scored (precision and recall) against the truth.

Columns: ``record_id`` (unique, int), ``entity_id`` (the label: records of
one person share it), ``first_name``, ``last_name``, ``email``, ``phone``,
``dob`` (``YYYY-MM-DD``), ``city``, ``zip``, ``source`` (which system the
record came from).

The first record of every person is clean; each duplicate gets one to three
of these corruptions (:data:`CORRUPTIONS`), the ones FindMatches is
documented for and a real customer table shows:

``typo``      one character of a name, of the e-mail's user name or one
              digit of the phone dropped, doubled, swapped with its
              neighbour or replaced by its neighbour on the keyboard;
``swap``      first and last name swapped;
``missing``   the e-mail, the phone or the date of birth left empty;
``format``    the same value written differently: names in capitals, the
              phone with or without punctuation, the e-mail in capitals,
              stray spaces;
``moved``     a new city, zip code and phone number (the person moved).

Names are drawn from small pools on purpose: different people often share a
first name, a last name or a city, so a matcher has to weigh several fields
instead of matching on one. And some people live together
(``household_share``): a second person with the same last name, address and
home phone, often the same e-mail domain, but another first name and date of
birth. They are *different* entities, the near-misses that make a low match
threshold merge people who should stay apart.
"""
from __future__ import annotations

import random
from datetime import date, timedelta

FIRST_NAMES = (
    "james", "mary", "john", "patricia", "robert", "jennifer", "michael", "linda", "william",
    "elizabeth", "david", "barbara", "richard", "susan", "joseph", "jessica", "thomas", "sarah",
    "charles", "karen", "christopher", "nancy", "daniel", "lisa", "matthew", "betty", "anthony",
    "margaret", "mark", "sandra", "donald", "ashley", "steven", "kimberly", "paul", "emily",
    "andrew", "donna", "joshua", "michelle", "kenneth", "carol", "kevin", "amanda", "brian",
    "melissa", "george", "deborah", "timothy", "stephanie",
)
LAST_NAMES = (
    "smith", "johnson", "williams", "brown", "jones", "garcia", "miller", "davis", "rodriguez",
    "martinez", "hernandez", "lopez", "gonzalez", "wilson", "anderson", "thomas", "taylor",
    "moore", "jackson", "martin", "lee", "perez", "thompson", "white", "harris", "sanchez",
    "clark", "ramirez", "lewis", "robinson", "walker", "young", "allen", "king", "wright",
    "scott", "torres", "nguyen", "hill", "flores", "green", "adams", "nelson", "baker", "hall",
    "rivera", "campbell", "mitchell", "carter", "roberts",
)
CITIES = (
    ("seattle", "98101"), ("portland", "97201"), ("denver", "80202"), ("austin", "73301"),
    ("chicago", "60601"), ("boston", "02108"), ("atlanta", "30303"), ("phoenix", "85001"),
    ("dallas", "75201"), ("miami", "33101"), ("detroit", "48201"), ("columbus", "43004"),
)
MAIL_DOMAINS = ("example.com", "example.org", "example.net", "mail.example")
SOURCES = ("web", "call-centre", "loyalty")
CORRUPTIONS = ("typo", "swap", "missing", "format", "moved")
KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")
#: Each letter's right-hand neighbour on a QWERTY keyboard (left-hand at the end of a row).
KEYBOARD_NEIGHBOURS = {row[i]: row[i + 1] if i + 1 < len(row) else row[i - 1]
                       for row in KEYBOARD_ROWS for i in range(len(row))}


def _typo(rng: random.Random, word: str) -> str:
    if len(word) < 4:
        return word + word[-1]
    i = rng.randrange(1, len(word) - 1)
    kind = rng.choice(("drop", "double", "transpose", "neighbour"))
    if kind == "drop":
        return word[:i] + word[i + 1:]
    if kind == "double":
        return word[:i] + word[i] + word[i:]
    if kind == "transpose":
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]
    neighbour = KEYBOARD_NEIGHBOURS.get(word[i], word[i])
    return word[:i] + neighbour + word[i + 1:]


def _phone_digits(rng: random.Random) -> str:
    return f"555{rng.randrange(0, 10_000_000):07d}"


def _formatted_phone(rng: random.Random, digits: str) -> str:
    style = rng.choice(("paren", "dashes", "dots", "plain"))
    area, mid, last = digits[:3], digits[3:6], digits[6:]
    return {"paren": f"({area}) {mid}-{last}", "dashes": f"{area}-{mid}-{last}",
            "dots": f"{area}.{mid}.{last}", "plain": digits}[style]


def _dashed(digits: str) -> str:
    return f"{digits[:3]}-{digits[3:6]}-{digits[6:]}"


def _person(rng: random.Random, entity_id: int, household: dict | None = None) -> dict:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    city, zip_code = rng.choice(CITIES)
    digits = _phone_digits(rng)
    domain = rng.choice(MAIL_DOMAINS)
    if household is not None:                   # same surname, address, home phone, mail provider
        last, city, zip_code = household["last_name"].lower(), household["city"].lower(), household["zip"]
        digits, domain = household["_digits"], household["email"].split("@")[1]
        first = rng.choice([f for f in FIRST_NAMES if f != household["first_name"].lower()])
    born = date(1950, 1, 1) + timedelta(days=rng.randrange(0, 365 * 50))
    mail_user = rng.choice((f"{first}.{last}", f"{first[0]}{last}", f"{first}{rng.randrange(1, 99)}"))
    return {"entity_id": entity_id, "first_name": first.title(), "last_name": last.title(),
            "email": f"{mail_user}@{domain}", "phone": _dashed(digits),
            "dob": born.isoformat(), "city": city.title(), "zip": zip_code, "_digits": digits}


def _duplicate(rng: random.Random, person: dict) -> tuple[dict, list[str]]:
    record = dict(person)
    applied = rng.sample(CORRUPTIONS, rng.choice((1, 1, 2, 2, 3)))
    for corruption in applied:
        if corruption == "typo":
            field = rng.choice(("first_name", "last_name", "first_name", "last_name", "email", "phone"))
            if field == "email" and record["email"]:
                user, domain = record["email"].split("@")
                record["email"] = f"{_typo(rng, user)}@{domain}"
            elif field == "phone" and record["phone"]:
                record["phone"] = _dashed(_typo(rng, person["_digits"])[:10].ljust(10, "0"))
            elif field in ("first_name", "last_name"):
                record[field] = _typo(rng, record[field].lower()).title()
        elif corruption == "moved":
            city, zip_code = rng.choice([c for c in CITIES if c[1] != person["zip"]])
            record["city"], record["zip"], record["phone"] = city.title(), zip_code, _dashed(_phone_digits(rng))
        elif corruption == "swap":
            record["first_name"], record["last_name"] = record["last_name"], record["first_name"]
        elif corruption == "missing":
            record[rng.choice(("email", "phone", "dob"))] = None
        else:
            field = rng.choice(("name", "phone", "email", "space"))
            if field == "name":
                record["first_name"], record["last_name"] = record["first_name"].upper(), record["last_name"].upper()
            elif field == "phone" and record["phone"] is not None:
                record["phone"] = _formatted_phone(rng, person["_digits"])
            elif field == "email" and record["email"] is not None:
                record["email"] = record["email"].upper()
            else:
                record["last_name"] = f" {record['last_name']} "
    return record, applied


def customer_records(n_people: int = 400, duplicate_share: float = 0.5, max_copies: int = 3,
                     household_share: float = 0.15, seed: int = 7) -> list[dict]:
    """Customer records of ``n_people`` people, some of them recorded more than once.

    A share ``duplicate_share`` of the people get 1 to ``max_copies`` extra
    records (near-duplicates, corrupted as the module docstring says). The
    records come shuffled, with ``record_id`` 1, 2, ... in that order, so a
    person's records are not next to each other. Each record also says which
    corruptions it carries in ``corruptions`` (empty for the clean first
    record), for a lesson to show what a matcher missed.

    Deterministic: the same arguments give the same records.
    """
    for name, share in (("duplicate_share", duplicate_share), ("household_share", household_share)):
        if not 0 <= share <= 1:
            raise ValueError(f"{name} must be between 0 and 1, not {share}")
    rng = random.Random(seed)
    records = []
    previous = None
    for entity_id in range(1, n_people + 1):
        housemate = previous if previous is not None and rng.random() < household_share else None
        person = previous = _person(rng, entity_id, housemate)
        records.append({**person, "corruptions": ""})
        if rng.random() < duplicate_share:
            for _ in range(rng.randint(1, max_copies)):
                copy, applied = _duplicate(rng, person)
                records.append({**copy, "corruptions": ",".join(applied)})
    rng.shuffle(records)
    out = []
    for record_id, record in enumerate(records, start=1):
        record.pop("_digits")
        out.append({"record_id": record_id, "entity_id": record["entity_id"],
                    "first_name": record["first_name"], "last_name": record["last_name"],
                    "email": record["email"], "phone": record["phone"], "dob": record["dob"],
                    "city": record["city"], "zip": record["zip"],
                    "source": SOURCES[rng.randrange(len(SOURCES))], "corruptions": record["corruptions"]})
    return out


def true_pairs(records: list[dict]) -> set[tuple[int, int]]:
    """Every pair ``(record_id, record_id)`` (smaller first) of records that describe the same person."""
    by_entity: dict[int, list[int]] = {}
    for r in records:
        by_entity.setdefault(r["entity_id"], []).append(r["record_id"])
    pairs = set()
    for ids in by_entity.values():
        ids = sorted(ids)
        pairs.update((a, b) for i, a in enumerate(ids) for b in ids[i + 1:])
    return pairs
