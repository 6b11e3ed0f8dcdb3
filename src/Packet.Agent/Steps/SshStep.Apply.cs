using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Json;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>What was decided, carried out: the keys, the host keys, sshd's config, sshd itself, and a record for status.</summary>
public sealed partial class SshStep
{
    private const FilePermissions PrivateDirectory = FilePermissions.S_IRWXU;
    private const FilePermissions PrivateFile = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR;
    private const FilePermissions ReadableFile = PrivateFile | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;
    private const int MaxAuthorizedKeysBytes = 1 << 20;
    private const string ConfigFile = "sshd_config";
    private const string PidFile = "sshd.pid";
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);
    private static readonly string[] HostKeyTypes = ["ed25519", "rsa"];

    private StepResult Apply(SshPlan plan, BootSettings settings)
    {
        var problems = new List<string>(plan.Problems);
        try
        {
            var (listed, homeOwner) = WriteAuthorizedKeys(plan);
            EnsureDirectory(paths.Runtime, PrivateDirectory);
            using var runtime = DirectoryHandle.Open(posix, paths.Runtime);
            var (hostKeys, made) = EnsureHostKeys(plan, settings);
            string fingerprint = Fingerprint(plan, hostKeys[0], settings);
            StopPrevious(runtime);
            if (Syscall.getpwuid(homeOwner) is not { } account)
            {
                return StepResult.Problem(string.Join("; ", [$"{plan.Home} belongs to uid {homeOwner}, which has no account in /etc/passwd: sshd can log no one in to it; sshd not started", .. problems]));
            }

            var config = new SshdSettings(plan.Port, hostKeys, account.pw_name, Path.Join(plan.Home, ".ssh", "authorized_keys"), runtime.PathOf(PidFile), plan.Sessions);
            runtime.ReplaceFile(ConfigFile, Encoding.UTF8.GetBytes(SshdConfig.Render(config)), 0, 0, PrivateFile, durable: false);
            EnsureDirectory(paths.PrivilegeSeparation, WorkspaceLayout.DirectoryMode);
            string log = LogPath(plan, runtime);
            if (Start(plan, runtime.PathOf(ConfigFile), log, settings) is { } failure)
            {
                return StepResult.Problem(string.Join("; ", [failure, .. problems]));
            }

            int? pid = WaitForPid(runtime);
            RecordState(plan, new SshState(plan.Port, fingerprint, listed, plan.HostKeysPersist, pid, log));
            string keys = plan.HostKeysPersist
                ? made ? $"host key {fingerprint}, made now and kept in {plan.HostKeys}" : $"host key {fingerprint}, kept in {plan.HostKeys}"
                : $"host key {fingerprint}, temporary (no volume: clients see a new host key after a restart)";
            string summary = $"sshd (pid {pid?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}) listening on port {plan.Port} for {account.pw_name}; {keys}; "
                + $"{Units.Count(listed)} key{(listed == 1 ? string.Empty : "s")} from the pod in {Path.Join(plan.Home, ".ssh", "authorized_keys")}; log {log}"
                + (plan.LeftOut.Count > 0 ? $"; not given to sessions (a newline in the value, or not a name): {string.Join(", ", plan.LeftOut)}" : string.Empty);
            return problems.Count > 0 ? StepResult.Problem($"{summary}; {string.Join("; ", problems)}") : StepResult.Ok(summary);
        }
        catch (IOException e)
        {
            return StepResult.Problem(string.Join("; ", [$"{e.Message}; sshd not started", .. problems]));
        }
    }

    /// <summary>The pod's keys as the managed block of ~/.ssh/authorized_keys (0600 in a 0700 ~/.ssh, the home owner's); how many it lists, and whose home it is.</summary>
    private (int Listed, uint HomeOwner) WriteAuthorizedKeys(SshPlan plan)
    {
        using var home = plan.Workspace is { Ready: true } state
            ? state.Workspace.OpenDirectory(WorkspaceLayout.Home)
            : DirectoryHandle.Open(posix, plan.Home);
        PosixException.Check(posix.FStat(home.Fd, out var owner), "stat", home.Path);
        using var ssh = home.CreateDirectory(".ssh", PrivateDirectory, (owner.st_uid, owner.st_gid));
        PosixException.Check(posix.FStat(ssh.Fd, out var sshStat), "stat", ssh.Path);
        if ((sshStat.st_mode & FilePermissions.ALLPERMS) != PrivateDirectory)
        {
            PosixException.Check(posix.FChmod(ssh.Fd, PrivateDirectory), "set the mode of", ssh.Path);
        }

        byte[]? current = ssh.ReadFile("authorized_keys", MaxAuthorizedKeysBytes, out var keysStat);
        string text = current is null ? string.Empty : Encoding.UTF8.GetString(current);
        string updated = AuthorizedKeysBlock.Apply(text, plan.Keys, out int listed);
        bool modeWrong = current is not null && (keysStat.st_mode & FilePermissions.ALLPERMS) != PrivateFile;
        if (!ReferenceEquals(updated, text) || modeWrong)
        {
            var (uid, gid) = current is null ? (owner.st_uid, owner.st_gid) : (keysStat.st_uid, keysStat.st_gid);
            ssh.ReplaceFile("authorized_keys", Encoding.UTF8.GetBytes(updated), uid, gid, PrivateFile);
        }

        return (listed, owner.st_uid);
    }

    /// <summary>A directory outside the workspace (the container's /run), made when missing.</summary>
    private void EnsureDirectory(string path, FilePermissions mode)
    {
        int made = posix.MkdirAt(-100, path, mode);
        if (made < 0 && PosixException.ErrnoOf(made) != Errno.EEXIST)
        {
            PosixException.Check(made, "create directory", path);
        }
    }

    /// <summary>The host keys, made once (root's, 0600, in a 0700 folder); whether any was made now.</summary>
    private (List<string> Keys, bool Made) EnsureHostKeys(SshPlan plan, BootSettings settings)
    {
        using var parent = plan.Workspace is { } home ? OpenState(home.Workspace) : DirectoryHandle.Open(posix, paths.Runtime);
        using var folder = parent.CreateDirectory(plan.Workspace is null ? "host-keys" : HostKeysFolder, PrivateDirectory);
        PosixException.Check(posix.FStat(folder.Fd, out var stat), "stat", folder.Path);
        if (stat.st_uid != 0 || (stat.st_mode & FilePermissions.ALLPERMS) != PrivateDirectory)
        {
            PosixException.Check(posix.FChown(folder.Fd, 0, 0), "set the owner of", folder.Path);
            PosixException.Check(posix.FChmod(folder.Fd, PrivateDirectory), "set the mode of", folder.Path);
        }

        var keys = new List<string>();
        bool made = false;
        foreach (string type in HostKeyTypes)
        {
            string name = $"ssh_host_{type}_key";
            if (!folder.Exists(name))
            {
                var result = Run(plan.Keygen, ["-q", "-t", type, "-N", string.Empty, "-C", "packet-agent host key", "-f", folder.PathOf(name)], settings);
                if (result is not null)
                {
                    throw new IOException($"ssh-keygen could not make the {type} host key in {folder.Path}: {result}");
                }

                made = true;
            }

            keys.Add(folder.PathOf(name));
        }

        return (keys, made);
    }

    private static DirectoryHandle OpenState(DirectoryHandle workspace) => workspace.CreateDirectory(WorkspaceLayout.State, WorkspaceLayout.DirectoryMode);

    /// <summary>The host key's SHA256 fingerprint, as ssh prints it to a user meeting the pod for the first time.</summary>
    private string Fingerprint(SshPlan plan, string hostKey, BootSettings settings)
    {
        var result = runner.RunAsync(plan.Keygen, ["-l", "-E", "sha256", "-f", hostKey + ".pub"], ToolTimeout, settings.Stop.Token).GetAwaiter().GetResult();
        string[] fields = result.StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return result.ExitCode == 0 && fields.Length > 1 ? fields[1] : "unknown";
    }

    /// <summary>An sshd this agent started before in this container (a boot run again by hand) holds the port: it is stopped first.</summary>
    private void StopPrevious(DirectoryHandle runtime)
    {
        if (ReadPid(runtime) is { } pid && IsSshd(pid))
        {
            posix.Kill(pid, (int)Signum.SIGTERM);
            for (int i = 0; i < 50 && posix.Kill(pid, 0) == 0 && IsSshd(pid); i++)
            {
                Thread.Sleep(20);
            }
        }

        // sshd leaves its pid file behind; the new one's pid is read from a file it wrote itself.
        int removed = posix.UnlinkAt(runtime.Fd, PidFile, isDirectory: false);
        if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
        {
            PosixException.Check(removed, "remove", runtime.PathOf(PidFile));
        }
    }

    private static bool IsSshd(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/comm").Trim() == "sshd";
        }
        catch (IOException)
        {
            return false;
        }
    }

    /// <summary>sshd's parent exits as its daemon forks, and the daemon writes the pid file a moment later.</summary>
    private static int? WaitForPid(DirectoryHandle runtime)
    {
        for (int i = 0; i < 100; i++)
        {
            if (ReadPid(runtime) is { } pid)
            {
                return pid;
            }

            Thread.Sleep(10);
        }

        return null;
    }

    private static int? ReadPid(DirectoryHandle runtime)
    {
        try
        {
            return runtime.ReadFile(PidFile, 64, out _) is { } bytes && int.TryParse(Encoding.ASCII.GetString(bytes).Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out int pid) ? pid : null;
        }
        catch (IOException)
        {
            return null;
        }
    }

    /// <summary>
    /// sshd opens its log by path as root: only where no one else can swap the file for a link. The
    /// hooks' log folder when root owns it alone; else the host keys' folder; without a volume, the runtime directory.
    /// </summary>
    private string LogPath(SshPlan plan, DirectoryHandle runtime)
    {
        if (plan.Workspace is not { } home)
        {
            return runtime.PathOf(LogFile);
        }

        using var state = OpenState(home.Workspace);
        using var logs = state.CreateDirectory(HooksStep.LogsFolder, WorkspaceLayout.DirectoryMode);
        PosixException.Check(posix.FStat(logs.Fd, out var stat), "stat", logs.Path);
        bool rootsAlone = stat.st_uid == 0 && (stat.st_mode & (FilePermissions.S_IWGRP | FilePermissions.S_IWOTH)) == 0;
        return rootsAlone ? logs.PathOf(LogFile) : Path.Join(plan.HostKeys, LogFile);
    }

    /// <summary>Starts sshd, which forks into the background once it listens; null, or why it did not start (in sshd's words).</summary>
    private string? Start(SshPlan plan, string config, string log, BootSettings settings)
    {
        long logged = new FileInfo(log) is { Exists: true } before ? before.Length : 0;
        string? failure = Run(plan.Sshd, ["-f", config, "-E", log], settings);
        if (failure is null)
        {
            return null;
        }

        string said = LogSince(log, logged);
        return $"sshd did not start: {(said.Length > 0 ? said : failure)} (config {config}, log {log})";
    }

    private static string LogSince(string log, long offset)
    {
        try
        {
            using var stream = new FileStream(log, FileMode.Open, FileAccess.Read);
            stream.Seek(Math.Min(offset, stream.Length), SeekOrigin.Begin);
            using var reader = new StreamReader(stream);
            return string.Join(" / ", reader.ReadToEnd().Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).TakeLast(3));
        }
        catch (IOException)
        {
            return string.Empty;
        }
    }

    /// <summary>Runs a tool to its end; null when it succeeded, else what it said.</summary>
    private string? Run(string program, IReadOnlyList<string> arguments, BootSettings settings)
    {
        var result = runner.RunAsync(program, arguments, ToolTimeout, settings.Stop.Token).GetAwaiter().GetResult();
        if (result.StartError is { } startError)
        {
            return startError;
        }

        if (result.TimedOut)
        {
            return $"{Path.GetFileName(program)} did not finish within {Units.Duration(ToolTimeout)}";
        }

        string said = (result.StandardError + " " + result.StandardOutput).Trim();
        return result.ExitCode == 0 ? null : $"exit {result.ExitCode}{(said.Length > 0 ? ": " + said : string.Empty)}";
    }

    /// <summary>What status shows: the port, the host key, the keys, the pid.</summary>
    private void RecordState(SshPlan plan, SshState state)
    {
        if (plan.Workspace is not { } home)
        {
            return;
        }

        try
        {
            using var folder = OpenState(home.Workspace);
            folder.ReplaceFile(StateFile, JsonSerializer.SerializeToUtf8Bytes(state, AgentJson.Default.SshState), 0, 0, ReadableFile, durable: false);
        }
        catch (IOException e)
        {
            Log.StateNotRecorded(logger, e.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 7, Level = LogLevel.Warning, Message = "could not record the SSH state for status: {Reason}")]
        public static partial void StateNotRecorded(ILogger logger, string reason);
    }
}
