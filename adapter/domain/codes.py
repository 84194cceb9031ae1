"""Business receipt codes (CONTRACT §6: 2xxx), one name per refusal or warning.

Refusals come with a negative ReturnStatus; the ledger's warnings (28xx) come with a
positive one: customs is authoritative, so the deduction is recorded and flagged.
"""

from __future__ import annotations

# Cards and seals (20xx, 21xx)
SEAL_NOT_VALID = "2001"  # the named seal is not bound to the signing card's holder, or not valid
RECEIVER_UNKNOWN = "2002"  # the bank or insurer named is not a registered, enabled partner
CARD_OF_ANOTHER_ENTERPRISE = "2101"
CARD_VALIDITY_INVERTED = "2102"
GRANT_TARGET_NOT_OPERATOR = "2103"  # a grant names a card that is not an operator card

# Agreements and authorizations (22xx, 23xx)
AGREEMENT_EXISTS = "2201"  # the AgreementNo is already used
AGREEMENT_UNKNOWN = "2202"  # a bank result for an agreement we never forwarded
AGREEMENT_STATE = "2203"  # a result for an agreement already decided
AGREEMENT_FIELDS = "2204"
AUTHORIZATION_EXISTS = "2301"
AUTHORIZATION_EXPIRED = "2302"  # ValidTo already passed when signed

# Quotas (24xx)
QUOTA_NO_AGREEMENT = "2401"
QUOTA_NO_AUTHORIZATION = "2402"
QUOTA_CREDIT = "2403"  # no rating on file, or DISHONEST
QUOTA_ALREADY_EFFECTIVE = "2404"
QUOTA_TERM = "2405"
QUOTA_REAPPLY = "2406"
QUOTA_UNKNOWN = "2407"
QUOTA_TRANSITION = "2408"
DECISION_FIELDS = "2409"  # a decision's result-dependent fields missing or present wrongly
QUOTA_EXISTS = "2410"
QUOTA_NOT_YOURS = "2411"  # a decision by an insurer that is not the quota's

# Increases (25xx)
INCREASE_QUOTA_STATE = "2501"
INCREASE_PENDING = "2502"
INCREASE_UNKNOWN = "2503"
INCREASE_EXISTS = "2504"

# Policies (26xx)
POLICY_QUOTA = "2601"
POLICY_AMOUNT = "2602"
POLICY_TERM = "2603"
POLICY_UNKNOWN = "2604"
POLICY_TRANSITION = "2605"
EPOLICY_DIGEST = "2606"
POLICY_EXISTS = "2607"

# Guarantee ledger (27xx refusals, 28xx warnings with a positive status)
LEDGER_UNKNOWN_RECORD = "2701"
LEDGER_TOTAL = "2702"  # Total is not the sum of the tax items
DEDUCT_EXCEEDS_AVAILABLE = "2801"
RESTORE_WITHOUT_DEDUCT = "2802"
DUPLICATE_DEDUCT = "2803"
RESTORE_EXCEEDS_DEDUCT = "2804"

# Claims (29xx)
CLAIM_POLICY = "2901"
CLAIM_ENTRY = "2902"
CLAIM_LATE_FEE = "2903"
CLAIM_TOTAL = "2904"
CLAIM_UNKNOWN = "2905"
CLAIM_TRANSITION = "2906"
CLAIM_EXISTS = "2907"
CLAIM_OVERDUE_DAYS = "2909"
