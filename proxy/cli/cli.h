/* cli — ferry reload, status, upgrade and -t --diff: commands that talk to the running
 * daemon's admin API (address and token from the config file). Exit codes: CLI_OK
 * only when what was asked happened (reload: the new generation serves on every
 * worker; status: the daemon serves; upgrade: a new process serves), CLI_FAILED when
 * it was refused or failed (errors printed), CLI_UNREACHABLE when no daemon answers.
 */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_UNREACHABLE = 3 };

int cli_reload(const char *config_path);
int cli_status(const char *config_path);
int cli_upgrade(const char *config_path);
/* ferry -t -c FILE --diff: checks FILE against the running daemon (GET /config). */
int cli_check_diff(const char *config_path);

#endif
