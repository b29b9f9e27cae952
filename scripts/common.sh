# Sourced by the job scripts.

# run_or_print CMD...: prints the command (shell-quoted, ready to copy), then runs it in
# place of the script, or only prints it when DRY_RUN=1.
run_or_print() {
  printf '%q ' "$@"
  echo
  if [ "${DRY_RUN:-0}" = 1 ]; then
    exit 0
  fi
  exec "$@"
}
