using System.Globalization;
using System.Text;
using System.Text.Json;
using Microsoft.Extensions.Logging;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Posix;
using Packet.Agent.Ssh;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>What was decided, carried out: the keys, sshd's own check of them, the host keys, sshd's config, sshd itself, and a record for status.</summary>
public sealed partial class SshStep
{
    private static readonly TimeSpan ToolTimeout = TimeSpan.FromSeconds(30);
    private static readonly TimeSpan StopWait = TimeSpan.FromSeconds(2);

    private StepResult Apply(SshDecision plan, BootSettings settings)
    {
        var problems = new List<string>(plan.Problems);
        try
        {
            int listed = WriteAuthorizedKeys(plan.Home, plan.Keys, problems);
            if (strictModes.Refusal(plan.KeysFile, plan.Account.Uid, plan.Account.Home) is { } refusal)
            {
                problems.Add(RefusalWithFix(plan, refusal));
            }

            if (RuntimeDirectory.Ensure(posix, paths.Runtime) is { } unsafeRuntime)
            {
                return StepResult.Problem(string.Join("; ", [$"{unsafeRuntime}; sshd not started", .. problems]));
            }

            using var runtime = DirectoryHandle.Open(posix, paths.Runtime);
            bool made = false;
            int? pid = plan.Running?.Pid;
            string? replaced = null;
            if (plan.Action != SshdAction.LeaveAlone)
            {
                made = MakeHostKeys(plan, runtime, settings);
                runtime.ReplaceFile(AgentSshd.ConfigFile, Encoding.UTF8.GetBytes(plan.Config), 0, 0, FileModes.Private, durable: false);
                runtime.ReplaceFile(PodEnvironment.RecordFile, PodEnvironment.Serialize(environment()), 0, 0, FileModes.Private, durable: false);
                EnsureDirectory(paths.PrivilegeSeparation, FileModes.Directory);
                replaced = plan.Action == SshdAction.Replace ? Stop(plan.Running!.Pid) : null;
                RemoveStalePidFile(runtime);
                if (Start(plan, runtime.PathOf(AgentSshd.ConfigFile), plan.Log, settings) is { } failure)
                {
                    return StepResult.Problem(string.Join("; ", [failure, .. problems]));
                }

                pid = WaitForPid(runtime);
            }

            string fingerprint = Fingerprint(plan, settings);
            RecordState(plan, new SshState(plan.Port, fingerprint, listed, plan.HostKeys.OnVolume, pid, plan.Log, plan.ListenAddress));
            string sshd = plan.Action == SshdAction.LeaveAlone
                ? $"sshd (pid {pid}) already listening on {plan.Listening} for {plan.Account.Name} with this configuration, left alone"
                : $"sshd (pid {pid?.ToString(CultureInfo.InvariantCulture) ?? "unknown"}) listening on {plan.Listening} for {plan.Account.Name}"
                  + (replaced is null ? string.Empty : $", in place of {replaced} (its sessions go on)");
            string hostKey = plan.HostKeys.OnVolume
                ? made ? $"host key {fingerprint}, made now and kept in {plan.HostKeys.Folder}" : $"host key {fingerprint}, kept in {plan.HostKeys.Folder}"
                : $"host key {fingerprint}, temporary (no volume: clients see a new host key after a restart)";
            string summary = $"{sshd}; {hostKey}; {Units.Count(listed)} key{(listed == 1 ? string.Empty : "s")} from the pod in {plan.KeysFile}; log {plan.Log}"
                + string.Concat(plan.Notes.Select(note => $"; {note}"));
            return problems.Count > 0 ? StepResult.Problem($"{summary}; {string.Join("; ", problems)}") : StepResult.Ok(summary);
        }
        catch (IOException e)
        {
            return StepResult.Problem(string.Join("; ", [$"{e.Message}; sshd not started", .. problems]));
        }
    }

    /// <summary>
    /// The pod's keys as the managed block of ~/.ssh/authorized_keys (0600 in a 0700 ~/.ssh, the
    /// home owner's), written only when it changes, every byte outside the block kept as it was;
    /// how many keys the block lists. A keys file with another name (a hard link) or of a third
    /// account is not the home's to edit: it is replaced by the block alone, and
    /// <paramref name="problems"/> says so.
    /// </summary>
    private int WriteAuthorizedKeys(KeysHome keysHome, IReadOnlyList<PublicKey> keys, List<string> problems)
    {
        using var home = OpenHome(keysHome, create: true)!;
        PosixException.Check(posix.FStat(home.Fd, out var owner), "stat", home.Path);
        using var ssh = home.CreateDirectory(".ssh", FileModes.PrivateDirectory, (owner.st_uid, owner.st_gid));
        PosixException.Check(posix.FStat(ssh.Fd, out var sshStat), "stat", ssh.Path);
        if ((sshStat.st_mode & FilePermissions.ALLPERMS) != FileModes.PrivateDirectory)
        {
            PosixException.Check(posix.FChmod(ssh.Fd, FileModes.PrivateDirectory), "set the mode of", ssh.Path);
        }

        byte[]? current = ssh.ReadFile("authorized_keys", MaxAuthorizedKeysBytes, out var keysStat);
        bool foreign = current is not null && (keysStat.st_nlink > 1 || (keysStat.st_uid != owner.st_uid && keysStat.st_uid != 0));
        if (foreign)
        {
            problems.Add($"{ssh.PathOf("authorized_keys")} was replaced by the pod's keys alone: it "
                + (keysStat.st_nlink > 1 ? $"had {keysStat.st_nlink} names (a hard link; its other names keep its lines)" : $"belonged to uid {keysStat.st_uid}, not the home's uid {owner.st_uid}")
                + "; add your own keys to it again below the block");
            current = null;
        }

        string text = current is null ? string.Empty : AuthorizedKeysBlock.FromBytes(current);
        string updated = AuthorizedKeysBlock.Apply(text, keys.Select(AuthorizedKeysBlock.AsBytes).ToList(), out int listed);
        bool modeWrong = current is not null && (keysStat.st_mode & FilePermissions.ALLPERMS) != FileModes.Private;
        if (!ReferenceEquals(updated, text) || modeWrong || foreign || (current is not null && keysStat.st_uid != owner.st_uid))
        {
            ssh.ReplaceFile("authorized_keys", AuthorizedKeysBlock.ToBytes(updated), owner.st_uid, owner.st_gid, FileModes.Private);
        }

        return listed;
    }

    /// <summary>
    /// sshd's refusal with what to do. The agent has just set ~/.ssh and the file itself: when one of
    /// those fails, the volume does not keep modes or owners, and only another volume helps. A folder
    /// above is the operator's (or the kubelet's, for a pod's fsGroup) to fix.
    /// </summary>
    private static string RefusalWithFix(SshDecision plan, StrictModesRefusal refusal)
    {
        string head = $"sshd will refuse every key in {plan.KeysFile} (StrictModes, kept on): {refusal}";
        string? sshFolder = SystemAccounts.RealPath(Path.GetDirectoryName(plan.KeysFile)!);
        if (refusal.Path == sshFolder || refusal.Path == SystemAccounts.RealPath(plan.KeysFile))
        {
            return $"{head}, although the agent set it to {(refusal.Path == sshFolder ? "0700" : "0600")} for its owner just now: "
                + "the volume does not keep modes or owners (FAT and exFAT do not); keep the home on a volume that does (ext4, xfs, btrfs, NFS) to log in over SSH";
        }

        return refusal.GroupWritable
            ? $"{head}; fix: chmod g-w {refusal.Path} (a pod's securityContext.fsGroup makes the volume group-writable again at every mount unless fsGroupChangePolicy is OnRootMismatch)"
            : $"{head}; fix: chmod go-w {refusal.Path}, and give it to root or the account that logs in";
    }

    /// <summary>A directory outside the workspace (the container's /run), made when missing.</summary>
    private void EnsureDirectory(string path, FilePermissions mode)
    {
        int made = posix.MkdirAt(FileModes.AtCurrentDirectory, path, mode);
        if (made < 0 && PosixException.ErrnoOf(made) != Errno.EEXIST)
        {
            PosixException.Check(made, "create directory", path);
        }
    }

    /// <summary>
    /// The host keys the plan lacks, made by ssh-keygen in a fresh root-only folder of the runtime
    /// directory (nothing another account can reach: ssh-keygen writes its files by path, through
    /// any link it finds), then kept on the volume by descriptor (root's, 0600, in a 0700 folder)
    /// and in the root-only copies sshd loads; whether any was made.
    /// </summary>
    private bool MakeHostKeys(SshDecision plan, DirectoryHandle runtime, BootSettings settings)
    {
        using var loaded = runtime.CreateDirectory(RuntimeHostKeysFolder, FileModes.PrivateDirectory);
        using var volumeState = plan.Workspace is { } home ? StateFolder.CreateShared(posix, home.Workspace) : null;
        using var kept = volumeState is null ? null : PrivateFolder(volumeState, WorkspaceLayout.HostKeys);
        if (plan.HostKeys.ToMake.Count > 0)
        {
            using var keygen = FreshFolder(runtime, KeygenFolder);
            foreach (string type in plan.HostKeys.ToMake)
            {
                string name = HostKeyName(type);
                if (Run(plan.Keygen, ["-q", "-t", type, "-N", string.Empty, "-C", "packet-agent host key", "-f", keygen.PathOf(name)], settings) is { } failure)
                {
                    throw new IOException($"ssh-keygen could not make the {type} host key in {keygen.Path}: {failure}");
                }

                foreach (var (file, mode) in KeyFiles(name))
                {
                    byte[] key = keygen.ReadFile(file, MaxKeyFileBytes, out _) ?? throw new IOException($"ssh-keygen made no {keygen.PathOf(file)}");
                    (kept ?? loaded).ReplaceFile(file, key, 0, 0, mode, durable: kept is not null);
                    posix.UnlinkAt(keygen.Fd, file, isDirectory: false);
                }
            }
        }

        foreach (string type in kept is null ? [] : plan.HostKeys.Stale)
        {
            foreach (var (file, mode) in KeyFiles(HostKeyName(type)))
            {
                byte[] key = kept!.ReadFile(file, MaxKeyFileBytes, out _) ?? throw new IOException($"{kept.PathOf(file)} is gone");
                loaded.ReplaceFile(file, key, 0, 0, mode, durable: false);
            }
        }

        return plan.HostKeys.ToMake.Count > 0;
    }

    /// <summary>A host key's two files: the private one (0600) and the public one (0644).</summary>
    private static (string File, FilePermissions Mode)[] KeyFiles(string name) => [(name, FileModes.Private), (name + ".pub", FileModes.Readable)];

    /// <summary>A folder of root's alone (0700), made when missing and set so when it is not; another account's is refused.</summary>
    private DirectoryHandle PrivateFolder(DirectoryHandle parent, string name)
    {
        var folder = parent.CreateDirectory(name, FileModes.PrivateDirectory);
        PosixException.Check(posix.FStat(folder.Fd, out var stat), "stat", folder.Path);
        if (!folder.Trust.Trusts(stat.st_uid))
        {
            folder.Dispose();
            throw new UnsafeWorkspaceException(folder.Path, $"it belongs to uid {stat.st_uid}, and host keys are kept only where root alone can reach them");
        }

        if ((stat.st_mode & FilePermissions.ALLPERMS) != FileModes.PrivateDirectory && folder.Trust.KeepsModes)
        {
            PosixException.Check(posix.FChmod(folder.Fd, FileModes.PrivateDirectory), "set the mode of", folder.Path);
        }

        return folder;
    }

    /// <summary>An empty folder of root's alone in the runtime directory: what an earlier, killed boot left in it is removed first.</summary>
    private DirectoryHandle FreshFolder(DirectoryHandle runtime, string name)
    {
        var folder = PrivateFolder(runtime, name);
        var leftovers = new List<string>();
        PosixException.Check(new DirectoryReader(posix, 4096).ReadAll(folder.Fd, entry => leftovers.Add(entry.Name)), "list", folder.Path);
        foreach (string leftover in leftovers)
        {
            PosixException.Check(Copy.TreeRemover.RemoveChild(posix, folder.Fd, leftover), "remove", folder.PathOf(leftover));
        }

        return folder;
    }

    /// <summary>The first host key's SHA256 fingerprint, as ssh prints it to a user meeting the pod for the first time.</summary>
    private string Fingerprint(SshDecision plan, BootSettings settings)
    {
        var result = runner.RunAsync(plan.Keygen, ["-l", "-E", "sha256", "-f", plan.HostKeys.Files[0] + ".pub"], ToolTimeout, settings.Stop.Token).GetAwaiter().GetResult();
        string[] fields = result.StandardOutput.Split(' ', StringSplitOptions.RemoveEmptyEntries);
        return result.ExitCode == 0 && fields.Length > 1 ? fields[1] : "unknown";
    }

    /// <summary>
    /// Stops the sshd an earlier boot in this container started (SIGTERM to the listener alone: the
    /// sessions it forked are processes of their own and go on), and waits for its port to be free.
    /// </summary>
    private string Stop(int pid)
    {
        posix.Kill(pid, (int)Signum.SIGTERM);
        long asked = clock.GetTimestamp();
        while (posix.Kill(pid, 0) == 0 && AgentSshd.IsSshd(files, pid) && clock.GetElapsedTime(asked) < StopWait)
        {
            Task.Delay(TimeSpan.FromMilliseconds(5), clock).Wait();
        }

        return $"the sshd (pid {pid}) an earlier boot started with another configuration";
    }

    /// <summary>sshd leaves its pid file behind when it is killed: the new one's pid must come from a file it wrote itself.</summary>
    private void RemoveStalePidFile(DirectoryHandle runtime)
    {
        int removed = posix.UnlinkAt(runtime.Fd, AgentSshd.PidFile, isDirectory: false);
        if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
        {
            PosixException.Check(removed, "remove", runtime.PathOf(AgentSshd.PidFile));
        }
    }

    /// <summary>sshd's parent exits as its daemon forks, and the daemon writes the pid file a moment later.</summary>
    private int? WaitForPid(DirectoryHandle runtime)
    {
        long started = clock.GetTimestamp();
        while (clock.GetElapsedTime(started) < TimeSpan.FromSeconds(1))
        {
            if (AgentSshd.ReadPid(files, runtime.PathOf(AgentSshd.PidFile)) is { } pid)
            {
                return pid;
            }

            Task.Delay(TimeSpan.FromMilliseconds(2), clock).Wait();
        }

        return null;
    }

    /// <summary>Starts sshd, which forks into the background once it listens; null, or why it did not start (in sshd's words).</summary>
    private string? Start(SshDecision plan, string config, string log, BootSettings settings)
    {
        long logged = files.FileInfo.New(log) is { Exists: true } before ? before.Length : 0;
        string? failure = Run(plan.Sshd, ["-f", config, "-E", log], settings);
        if (failure is null)
        {
            return null;
        }

        string said = LogSince(log, logged);
        return $"sshd did not start: {(said.Length > 0 ? said : failure)} (config {config}, log {log})";
    }

    private string LogSince(string log, long offset)
    {
        try
        {
            using var stream = files.FileStream.New(log, FileMode.Open, FileAccess.Read);
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
    private void RecordState(SshDecision plan, SshState state)
    {
        if (plan.Workspace is not { } home)
        {
            return;
        }

        try
        {
            using var folder = StateFolder.CreateShared(posix, home.Workspace);
            folder.ReplaceFile(WorkspaceLayout.SshState, JsonSerializer.SerializeToUtf8Bytes(state, SshJson.Default.SshState), 0, 0, FileModes.Readable, durable: false);
        }
        catch (IOException e)
        {
            Log.StateNotRecorded(logger, e.Message);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = StepNumber.Ssh, Level = LogLevel.Warning, Message = "could not record the SSH state for status: {Reason}")]
        public static partial void StateNotRecorded(ILogger logger, string reason);
    }
}
