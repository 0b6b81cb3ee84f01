"""The director's commands at the court: the record that makes each run at most once, the
dispatcher that checks and runs them, and what each action does."""
