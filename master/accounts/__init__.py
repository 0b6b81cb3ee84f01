"""Who may use the web console: users with argon2 password hashes, expiring sessions, slowed guessing."""

from master.accounts.service import Accounts, SignInRefused, SignInResult
from master.accounts.store import AccountError, AccountStore, Principal
from master.accounts.throttle import Throttle

__all__ = ["AccountError", "AccountStore", "Accounts", "Principal", "SignInRefused", "SignInResult", "Throttle"]
