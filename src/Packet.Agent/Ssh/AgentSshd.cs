using System.Globalization;
using System.IO.Abstractions;
using System.Text;

namespace Packet.Agent.Ssh;

/// <summary>An sshd an earlier boot in this container started, still running: its pid and the config it was started with.</summary>
public sealed record RunningSshd(int Pid, string Config);

/// <summary>
/// The sshd the agent starts, found again: its pid file and config live in the container's runtime
/// directory, so a boot run again by hand (from a shell, or from inside an SSH session) knows whether
/// the sshd already serving this container is the one it would start.
/// </summary>
public static class AgentSshd
{
    public const string ConfigFile = "sshd_config";
    public const string PidFile = "sshd.pid";

    /// <summary>
    /// The running sshd the runtime directory's pid file names, when that process is an sshd started
    /// with this directory's config (its command line says <c>-f CONFIG</c>); null otherwise.
    /// </summary>
    public static RunningSshd? Find(IFileSystem files, string runtime)
    {
        string config = Path.Join(runtime, ConfigFile);
        if (ReadPid(files, Path.Join(runtime, PidFile)) is not { } pid || !StartedWith(files, pid, config))
        {
            return null;
        }

        try
        {
            return new RunningSshd(pid, files.File.ReadAllText(config));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>The pid a pid file holds; null when there is none or it is not a number.</summary>
    public static int? ReadPid(IFileSystem files, string pidFile)
    {
        try
        {
            return int.TryParse(files.File.ReadAllText(pidFile).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) && pid > 0 ? pid : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Whether the process is sshd (by its name) started with <paramref name="config"/> (by its arguments).</summary>
    public static bool StartedWith(IFileSystem files, int pid, string config)
    {
        try
        {
            if (!IsSshd(files, pid))
            {
                return false;
            }

            // sshd's listener rewrites its arguments into a process title ("sshd: /usr/sbin/sshd -f CONFIG ...
            // [listener] ..."), one string: the words are split at spaces as well as NULs.
            string[] arguments = Encoding.UTF8.GetString(files.File.ReadAllBytes($"/proc/{pid}/cmdline")).Split(['\0', ' ']);
            int flag = Array.IndexOf(arguments, "-f");
            return flag >= 0 && flag + 1 < arguments.Length && arguments[flag + 1] == config;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>Whether the process is an sshd at all (a stale pid file may name another program by now).</summary>
    public static bool IsSshd(IFileSystem files, int pid)
    {
        try
        {
            return files.File.ReadAllText($"/proc/{pid}/comm").Trim() == "sshd";
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }
}
