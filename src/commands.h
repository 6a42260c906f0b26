/* Entry points of the subcommands.  Each gets argv with argv[0] = its own
 * name and returns the process exit code: 0 ok, 1 failure, 2 usage error. */
#pragma once

#define SUBWAY_VERSION "0.1.0"

int lab_main(int argc, char **argv);
int daemon_main(int argc, char **argv);
int manager_main(int argc, char **argv);
int agent_main(int argc, char **argv);
int connect_main(int argc, char **argv);
int status_main(int argc, char **argv);
int quit_main(int argc, char **argv);
int doctor_main(int argc, char **argv);
int intercept_main(int argc, char **argv);
int leave_main(int argc, char **argv);
int list_main(int argc, char **argv);
int install_main(int argc, char **argv);
int uninstall_main(int argc, char **argv);
