using System.Text;
using Packet.Agent.Cli;

namespace Packet.Agent.Commands;

/// <summary>What <c>packet-agent --help</c> prints: the contract, in the terminal. Options come from <see cref="OptionTable"/>.</summary>
public static class HelpText
{
    /// <summary>The commands that take an option, as --help and README's options table name them.</summary>
    internal static string Commands(CommandSet commands) => string.Join(", ", new (CommandSet Set, string Name)[]
    {
        (CommandSet.Boot, "boot"), (CommandSet.Status, "status"), (CommandSet.Gpu, "gpu"), (CommandSet.ResetHome, "reset-home"),
    }.Where(c => commands.HasFlag(c.Set)).Select(c => c.Name));

    public static string Render()
    {
        var help = new StringBuilder(Opening);
        AppendOptions(help);
        return help.Append(Closing).ToString();
    }

    /// <summary>Each option: its flag (or variable), its variable, what it does, its default, the commands that take it.</summary>
    private static void AppendOptions(StringBuilder help)
    {
        foreach (var spec in OptionTable.All)
        {
            string flag = spec.Flag is null ? "(environment only)" : spec.IsSwitch ? spec.Flag : $"{spec.Flag} {spec.ValueName}";
            help.Append("  ").Append(flag);
            if (spec.VariableInHelp is not null && spec.Flag is not null)
            {
                help.Append("  [").Append(spec.VariableInHelp).Append(']');
            }
            else if (spec.VariableInHelp is not null)
            {
                help.Append(' ').Append(spec.VariableInHelp);
            }

            help.AppendLine();
            help.Append("      ").Append(spec.Help).Append(". Default: ").Append(spec.DefaultInHelp).Append('.');
            help.Append(" (").Append(Commands(spec.Commands)).Append(')').AppendLine();
        }
    }

    private const string Opening = """
        packet-agent: makes an ephemeral GPU pod feel persistent.

        At boot it keeps the home directory on the persistent volume mounted at /workspace and
        puts /workspace/bin on PATH, checks the GPUs, then runs your command in its place.

        Usage:
          packet-agent boot [options] [-- COMMAND [ARGS...]]
          packet-agent status [--json]
          packet-agent gpu [--json] [--nvidia-smi PATH] [--gpu-timeout SECONDS]
          packet-agent reset-home [--at-next-boot] [--dry-run]
          packet-agent --help | --version
          packet-agent run-as UID GID -- COMMAND [ARGS...]   (internal: how hooks drop root)

        boot runs, in order:
          1. guard    /workspace missing or not a directory: warn, skip steps 2-4 (the pod still starts)
          2. seed     first boot only: copy the home's contents (dotfiles too) into /workspace/home,
                      as faithfully as cp -a; sockets and devices skipped, unreadable entries
                      skipped and named; crash-safe (staged under /workspace/.packet, then moved)
          3. marker   /workspace/home/.packet-init, written last and atomically; delete it to re-seed
          4. profile  /workspace/bin exists; /workspace/home/.bashrc holds one managed PATH block
          5. gpu      nvidia-smi query (started at boot, so it overlaps the copy): one line per GPU
          6. hooks    /workspace/setup.sh, .packet/first-boot.d/* (until each succeeded once),
                      .packet/boot.d/*, requirements.txt into /workspace/venv (when it changed);
                      run as the owner of /workspace/home, each with a time limit and a log in
                      /workspace/.packet/logs; a failure is a warning
          7. ssh      only when there is a key to let in (PUBLIC_KEY, SSH_PUBLIC_KEY, --ssh-keys-dir, or one
                      already in ~/.ssh/authorized_keys) or --ssh on: the pod's keys into
                      ~/.ssh/authorized_keys, an ed25519 host key kept in /workspace/.packet/ssh,
                      sshd (StrictModes on) started in the background; a rerun leaves it running
          8. exec     with -- COMMAND: the live home is linked to /workspace/home (--link-home), then
                      the agent becomes COMMAND (same PID), /workspace/bin on PATH

        status shows the workspace (mounted? free space), the home (seeded when, by which version),
        the PATH block, the live home, the last boot (/workspace/.packet/last-boot.json) and its
        GPUs, and what needs attention (exit 1 when something does). --json is stable.
        gpu queries nvidia-smi and prints each GPU (index, name, uuid, memory, driver).
        reset-home moves /workspace/home to /workspace/home.bak-<UTC time> (never deletes it) and
        seeds a fresh home now, or at the next boot with --at-next-boot; it refuses while another
        agent holds the workspace lock.

        Options (each also read from its environment variable; the flag wins):

        """;

    private const string Closing = """

        Exit codes:
          0    done, or done with warnings (a missing /workspace is a warning: the pod must still start)
          1    a step failed and --strict or --gpu require asked for failure; the reason also goes
               to the termination message file
          2    usage error: the message names the value and what is accepted
          126  COMMAND found but not executable
          127  COMMAND not found
          any other: in exec mode the process is COMMAND, so this is its own exit code

        Logs go to standard error, one line per event, each naming its step (guard, seed, marker,
        profile, gpu, hooks, ssh, exec); standard output is left to COMMAND and to 'gpu --json'.

        """;
}
