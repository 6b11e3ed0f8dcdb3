using System.Collections.Concurrent;
using System.Text.RegularExpressions;
using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.Posix;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// One change a step made, as the recording adapters saw it: the call, the absolute path it changed
/// (a program for "run", "pid N" for "kill"), and the destination of a rename or a link.
/// </summary>
public sealed record RecordedChange(string Call, string Path, string? To = null)
{
    public override string ToString() => To is null ? $"{Call} {Path}" : $"{Call} {Path} -> {To}";
}

/// <summary>The changes made through the recording adapters, in order.</summary>
public sealed class ChangeLog
{
    private readonly ConcurrentQueue<RecordedChange> _changes = new();

    public void Add(RecordedChange change) => _changes.Enqueue(change);

    /// <summary>What was recorded since the last call, which starts the next recording.</summary>
    public IReadOnlyList<RecordedChange> Take()
    {
        var taken = new List<RecordedChange>();
        while (_changes.TryDequeue(out var change))
        {
            taken.Add(change);
        }

        return taken;
    }
}

/// <summary>
/// An <see cref="IPosix"/> that records every call that changed something (it succeeded and it
/// creates, writes, moves, removes, links, changes an owner, a mode, a time or an extended
/// attribute, takes a lock or signals a process), with the absolute path, then answers as the
/// adapter under it (the confined <see cref="FaultyPosix"/> by default). Reads go through unrecorded.
/// </summary>
public sealed class RecordingPosix(ChangeLog log, IPosix? inner = null) : IPosix
{
    private const OpenFlags Writes = OpenFlags.O_WRONLY | OpenFlags.O_RDWR | OpenFlags.O_CREAT | OpenFlags.O_TRUNC;

    private readonly IPosix _inner = inner ?? new FaultyPosix();

    public uint EffectiveUserId => _inner.EffectiveUserId;

    public uint EffectiveGroupId => _inner.EffectiveGroupId;

    public int OpenAt(int dirFd, string name, OpenFlags flags, FilePermissions mode)
    {
        string path = FaultyPosix.PathOf(dirFd, name);
        int fd = _inner.OpenAt(dirFd, name, flags, mode);
        return (flags & Writes) != 0 ? At("open for writing", path, fd) : fd;
    }

    public int Close(int fd) => _inner.Close(fd);

    public int FStat(int fd, out Stat stat) => _inner.FStat(fd, out stat);

    public int LStatAt(int dirFd, string name, out Stat stat) => _inner.LStatAt(dirFd, name, out stat);

    public int MkdirAt(int dirFd, string name, FilePermissions mode) => At("mkdir", FaultyPosix.PathOf(dirFd, name), _inner.MkdirAt(dirFd, name, mode));

    public int MkfifoAt(int dirFd, string name, FilePermissions mode) => At("mkfifo", FaultyPosix.PathOf(dirFd, name), _inner.MkfifoAt(dirFd, name, mode));

    public int SymlinkAt(string target, int dirFd, string name) => At("symlink", FaultyPosix.PathOf(dirFd, name), _inner.SymlinkAt(target, dirFd, name), target);

    public int ReadLinkAt(int dirFd, string name, out string target) => _inner.ReadLinkAt(dirFd, name, out target);

    public int LinkAt(int oldDirFd, string oldName, int newDirFd, string newName) =>
        At("link", FaultyPosix.PathOf(oldDirFd, oldName), _inner.LinkAt(oldDirFd, oldName, newDirFd, newName), FaultyPosix.PathOf(newDirFd, newName));

    public int RenameAt(int oldDirFd, string oldName, int newDirFd, string newName, bool noReplace)
    {
        // The paths before the call: afterwards the old one names nothing.
        string from = FaultyPosix.PathOf(oldDirFd, oldName);
        string to = FaultyPosix.PathOf(newDirFd, newName);
        return At("rename", from, _inner.RenameAt(oldDirFd, oldName, newDirFd, newName, noReplace), to);
    }

    public int UnlinkAt(int dirFd, string name, bool isDirectory)
    {
        string path = FaultyPosix.PathOf(dirFd, name);
        return At(isDirectory ? "rmdir" : "unlink", path, _inner.UnlinkAt(dirFd, name, isDirectory));
    }

    public int FChown(int fd, uint uid, uint gid) => Through("chown", fd, _inner.FChown(fd, uid, gid));

    public int LChownAt(int dirFd, string name, uint uid, uint gid) => At("chown", FaultyPosix.PathOf(dirFd, name), _inner.LChownAt(dirFd, name, uid, gid));

    public int FChmod(int fd, FilePermissions mode) => Through("chmod", fd, _inner.FChmod(fd, mode));

    public FilePermissions? ReadFileCreationMask() => _inner.ReadFileCreationMask();

    public int FUtimens(int fd, in Stat times) => Through("utimens", fd, _inner.FUtimens(fd, times));

    public int LUtimensAt(int dirFd, string name, in Stat times) => At("utimens", FaultyPosix.PathOf(dirFd, name), _inner.LUtimensAt(dirFd, name, times));

    public long FListXattr(int fd, byte[] buffer) => _inner.FListXattr(fd, buffer);

    public long FGetXattr(int fd, string name, byte[] buffer) => _inner.FGetXattr(fd, name, buffer);

    public int FSetXattr(int fd, string name, byte[] value, int length) => Through("setxattr", fd, _inner.FSetXattr(fd, name, value, length));

    public long CopyFileRange(int inFd, long inOffset, int outFd, long outOffset, long length) => Through("write", outFd, _inner.CopyFileRange(inFd, inOffset, outFd, outOffset, length));

    public long SendFile(int outFd, int inFd, long inOffset, long length) => Through("write", outFd, _inner.SendFile(outFd, inFd, inOffset, length));

    public long PRead(int fd, Span<byte> buffer, long offset) => _inner.PRead(fd, buffer, offset);

    public long Write(int fd, ReadOnlySpan<byte> buffer) => Through("write", fd, _inner.Write(fd, buffer));

    public long PWrite(int fd, ReadOnlySpan<byte> buffer, long offset) => Through("write", fd, _inner.PWrite(fd, buffer, offset));

    public long LSeek(int fd, long offset, int whence) => _inner.LSeek(fd, offset, whence);

    public int FTruncate(int fd, long length) => Through("truncate", fd, _inner.FTruncate(fd, length));

    public int GetDents(int fd, Span<byte> buffer) => _inner.GetDents(fd, buffer);

    public int FSync(int fd) => _inner.FSync(fd);

    public int SyncFs(int fd) => _inner.SyncFs(fd);

    public int StartWriteback(int fd, long offset, long length) => _inner.StartWriteback(fd, offset, length);

    public int FStatVfs(int fd, out Statvfs stat) => _inner.FStatVfs(fd, out stat);

    public long FileSystemType(int fd) => _inner.FileSystemType(fd);

    public int Flock(int fd, int operation) => Through("flock", fd, _inner.Flock(fd, operation));

    public int AccessAt(int dirFd, string name, int mode) => _inner.AccessAt(dirFd, name, mode);

    public int Kill(int pid, int signal)
    {
        int result = _inner.Kill(pid, signal);
        // Signal 0 only asks whether the process is there.
        return signal == 0 ? result : At("kill", $"pid {pid}", result);
    }

    private int At(string call, string path, int result, string? to = null)
    {
        if (result >= 0)
        {
            log.Add(new RecordedChange(call, path, to));
        }

        return result;
    }

    private long Through(string call, int fd, long result)
    {
        // Pipes and terminals are not files a plan names.
        if (result >= 0 && FaultyPosix.DescriptorPath(fd) is { } path && path.StartsWith('/'))
        {
            log.Add(new RecordedChange(call, path));
        }

        return result;
    }

    private int Through(string call, int fd, int result) => (int)Through(call, fd, (long)result);
}

/// <summary>A process runner that records each program it runs ("run"), then runs it with the runner under it.</summary>
public sealed class RecordingProcessRunner(ChangeLog log, IProcessRunner inner) : IProcessRunner
{
    public Task<ProcessResult> RunAsync(string fileName, IReadOnlyList<string> arguments, TimeSpan timeout, CancellationToken cancellationToken)
    {
        log.Add(new RecordedChange("run", fileName));
        return inner.RunAsync(fileName, arguments, timeout, cancellationToken);
    }
}

/// <summary>A hook runner that records each hook it runs ("run", its program), then runs it with the runner under it.</summary>
public sealed class RecordingHookRunner(ChangeLog log, IHookRunner inner) : IHookRunner
{
    public HookOutcome Run(HookRun hook, HookIdentity identity, IReadOnlyDictionary<string, string> environment, string workingDirectory, TimeSpan timeout, Action<string> onLine, CancellationToken stop)
    {
        log.Add(new RecordedChange("run", hook.Program));
        return inner.Run(hook, identity, environment, workingDirectory, timeout, onLine, stop);
    }
}

/// <summary>
/// Whether what a step did stays inside what its plan named. A planned change covers the calls that
/// carry it out: a written file covers its temporary sibling (<c>.NAME.packet-tmp-*</c>) and the
/// rename over it; a copied tree everything under it and the temporary sibling it is built in
/// (<c>.NAME.packet-tmp</c>, with the volume probe made there); a removed tree everything under it; a move the rename, or the link and
/// unlink that stand in for it, and the move back when what follows fails; the lock its file.
/// </summary>
public static class PlanCoverage
{
    public static IReadOnlyList<RecordedChange> Uncovered(IReadOnlyList<PlannedChange> plan, IEnumerable<RecordedChange> done) =>
        done.Where(change => !plan.Any(planned => Covers(planned, change))).Distinct().ToList();

    private static bool Covers(PlannedChange planned, RecordedChange change)
    {
        if (change.Call == "run")
        {
            return planned.Kind is ChangeKind.RunProgram or ChangeKind.StartProcess && planned.Path == change.Path;
        }

        if (change.Call == "kill")
        {
            return planned.Kind == ChangeKind.StopProcess && Regex.IsMatch($"{planned.Path} {planned.Other}", $@"\b{Regex.Escape(change.Path)}\b");
        }

        var paths = change.To is null || change.Call == "symlink" ? [change.Path] : new[] { change.Path, change.To };
        return paths.All(path => CoversPath(planned, path));
    }

    private static bool CoversPath(PlannedChange planned, string path) => planned.Kind switch
    {
        ChangeKind.CopyTree => path == planned.Path || IsUnder(path, planned.Path) || IsTemporaryOf(path, planned.Path) || IsUnderTemporaryOf(path, planned.Path),
        ChangeKind.RemoveTree => path == planned.Path || IsUnder(path, planned.Path),
        ChangeKind.WriteFile => path == planned.Path || IsTemporaryOf(path, planned.Path),
        ChangeKind.Move => path == planned.Path || path == planned.Other,
        ChangeKind.Link => path == planned.Path || IsTemporaryOf(path, planned.Path),
        ChangeKind.CreateDirectory or ChangeKind.SetOwner or ChangeKind.SetMode or ChangeKind.Remove or ChangeKind.Lock => path == planned.Path,
        _ => false,
    };

    private static bool IsUnder(string path, string tree) => path.StartsWith(tree.TrimEnd('/') + "/", StringComparison.Ordinal);

    /// <summary>The temporary sibling a file is written in, or a copied entry built in, before it is renamed into place.</summary>
    private static bool IsTemporaryOf(string path, string target) =>
        Path.GetDirectoryName(path) == Path.GetDirectoryName(target) && Path.GetFileName(path).StartsWith($".{Path.GetFileName(target)}.packet-tmp", StringComparison.Ordinal);

    private static bool IsUnderTemporaryOf(string path, string target)
    {
        string? parent = Path.GetDirectoryName(path);
        return parent is not null && parent != "/" && (IsTemporaryOf(parent, target) || IsUnderTemporaryOf(parent, target));
    }
}
