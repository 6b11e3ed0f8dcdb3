using Microsoft.Win32.SafeHandles;
using Mono.Unix.Native;
using Packet.Agent.Copy;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Home;

/// <summary>
/// Brings a new image's home into a seeded home the way dpkg treats conffiles. Against the manifest
/// of what was seeded (or last upgraded): an entry new in the image and absent from the home is
/// added; one the image changed and the user did not is updated; one both changed stays the user's,
/// with the image's version beside it as <c>NAME.packet-new</c>; one the user deleted stays deleted.
/// <see cref="Plan"/> walks the home beside the new image through descriptors (never following a
/// symlink) and the old manifest as a stream in the same order, changing nothing; <see cref="Apply"/>
/// carries the plan's actions out and records the new manifest.
/// </summary>
public sealed class ImageUpgrade(IPosix posix, CopyOptions copyOptions, Action<string> onAction)
{
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

    private readonly DirectoryReader _reader = new(posix, 64 * 1024);
    private readonly TreeCopier _copier = new(posix, copyOptions);

    /// <summary>Writes the manifest of <paramref name="source"/> as the baseline for later upgrades (after a seed, an upgrade, or adopting a workspace).</summary>
    public void RecordBaseline(DirectoryHandle state, DirectoryHandle source, string identity)
    {
        using var pending = PrepareBaseline(state, source, identity, CancellationToken.None);
        pending.Commit();
    }

    /// <summary>
    /// Writes the manifest of <paramref name="source"/> beside the recorded one, not yet in its
    /// place: a first seed prepares it while it copies and flushes (the manifest reads the image's
    /// home, not the copy) and commits it only once the copy is complete.
    /// </summary>
    public PendingBaseline PrepareBaseline(DirectoryHandle state, DirectoryHandle source, string identity, CancellationToken stop)
    {
        var output = Writer(state, identity);
        try
        {
            Record(source.Fd, string.Empty, output, stop);
            output.Flush();
            return new PendingBaseline(posix, state, output);
        }
        catch
        {
            output.Dispose();
            posix.UnlinkAt(state.Fd, PendingBaseline.TemporaryName, isDirectory: false);
            throw;
        }
    }

    /// <summary>What bringing <paramref name="source"/> (the new image's home) into <paramref name="home"/> would do; changes nothing.</summary>
    public UpgradePlan Plan(DirectoryHandle state, DirectoryHandle source, DirectoryHandle home)
    {
        var actions = new List<UpgradeAction>();
        var counts = new UpgradeReport();
        using var old = new ManifestCursor(Reader(state));
        Walk(source.Fd, home.Fd, string.Empty, old, actions, counts);
        return new UpgradePlan(actions, counts);
    }

    /// <summary>Carries out <paramref name="plan"/>, one action at a time (a failed one is counted and logged), then records the new image's manifest.</summary>
    public UpgradeReport Apply(UpgradePlan plan, DirectoryHandle state, DirectoryHandle source, DirectoryHandle home, string identity)
    {
        var report = new UpgradeReport { LeftDeleted = plan.Counts.LeftDeleted };
        foreach (var action in plan.Actions)
        {
            string? problem = InParents(source.Fd, home.Fd, action.Path, (sourceDir, homeDir, name) => action.Kind switch
            {
                UpgradeActionKind.AddDirectory => AddDirectory(sourceDir, name, homeDir),
                UpgradeActionKind.Add => Install(sourceDir, name, homeDir, name, replace: false),
                UpgradeActionKind.Update => Install(sourceDir, name, homeDir, name, replace: true),
                _ => Install(sourceDir, name, homeDir, name + WorkspaceLayout.ImageVersionSuffix, replace: true),
            });
            if (problem is not null)
            {
                report.Failed++;
                onAction($"could not bring in {action.Path}: {problem}");
                continue;
            }

            _ = action.Kind switch
            {
                UpgradeActionKind.AddDirectory or UpgradeActionKind.Add => report.Added++,
                UpgradeActionKind.Update => report.Updated++,
                _ => report.KeptChanged++,
            };
            onAction(action.Describe);
        }

        RecordBaseline(state, source, identity);
        return report;
    }

    /// <summary>The image identity the manifest was written for, or null when there is no (readable) manifest.</summary>
    public static string? RecordedIdentity(DirectoryHandle state, IPosix posix)
    {
        int fd = OpenManifest(state);
        if (fd < 0)
        {
            return null;
        }

        var buffer = new byte[512];
        long read = posix.PRead(fd, buffer, 0);
        posix.Close(fd);
        if (read <= 0)
        {
            return null;
        }

        string text = System.Text.Encoding.UTF8.GetString(buffer, 0, (int)read);
        int newline = text.IndexOf('\n', StringComparison.Ordinal);
        return newline < 0 ? null : ImageManifest.ReadIdentity(text[..newline]);
    }

    /// <summary>Each entry of the image's home, in manifest order (never copied: sockets and devices).</summary>
    private IEnumerable<(string Name, Stat Stat)> Entries(int sourceFd)
    {
        foreach (string name in ImageManifest.SortedNames(_reader, sourceFd))
        {
            if (posix.LStatAt(sourceFd, name, out var stat) >= 0 && !CopyRules.Skipped(stat.st_mode))
            {
                yield return (name, stat);
            }
        }
    }

    private void Record(int sourceFd, string prefix, StreamWriter output, CancellationToken stop)
    {
        foreach (var (name, stat) in Entries(sourceFd))
        {
            stop.ThrowIfCancellationRequested();
            output.WriteLine(ImageManifest.Format(ImageManifest.Describe(posix, sourceFd, name, prefix + name, stat)));
            if ((stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR && posix.OpenAt(sourceFd, name, DirectoryFlags, 0) is var child and >= 0)
            {
                try
                {
                    Record(child, prefix + name + "/", output, stop);
                }
                finally
                {
                    posix.Close(child);
                }
            }
        }
    }

    private void Walk(int sourceFd, int homeFd, string prefix, ManifestCursor old, List<UpgradeAction> actions, UpgradeReport counts)
    {
        foreach (var (name, stat) in Entries(sourceFd))
        {
            string path = prefix + name;
            var entry = ImageManifest.Describe(posix, sourceFd, name, path, stat);
            var before = old.Take(path);
            bool inHome = posix.LStatAt(homeFd, name, out var there) >= 0;
            var homeType = inHome ? there.st_mode & FilePermissions.S_IFMT : 0;

            if ((stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR)
            {
                if (!inHome)
                {
                    Missing(before, UpgradeActionKind.AddDirectory, path, actions, counts);
                }
                else if (homeType == FilePermissions.S_IFDIR)
                {
                    WalkInto(sourceFd, homeFd, name, path, old, actions, counts);
                }

                continue;
            }

            if (!inHome)
            {
                Missing(before, UpgradeActionKind.Add, path, actions, counts);
                continue;
            }

            if (before is not null && entry.SameAs(before))
            {
                continue; // the image did not change it
            }

            var current = ImageManifest.Describe(posix, homeFd, name, path, there);
            if (current.SameAs(entry))
            {
                continue; // the home already has the image's new version
            }

            bool untouched = before is not null && current.SameAs(before);
            actions.Add(new UpgradeAction(untouched ? UpgradeActionKind.Update : UpgradeActionKind.KeepUsers, path));
            _ = untouched ? counts.Updated++ : counts.KeptChanged++;
        }
    }

    /// <summary>An entry of the image the home lacks: new in the image, it is added; known before, the user deleted it and it is never resurrected.</summary>
    private static void Missing(ManifestEntry? before, UpgradeActionKind add, string path, List<UpgradeAction> actions, UpgradeReport counts)
    {
        if (before is null)
        {
            actions.Add(new UpgradeAction(add, path));
            counts.Added++;
        }
        else
        {
            counts.LeftDeleted++;
        }
    }

    /// <summary>A directory on both sides: its entries, walked in turn.</summary>
    private void WalkInto(int sourceFd, int homeFd, string name, string path, ManifestCursor old, List<UpgradeAction> actions, UpgradeReport counts)
    {
        int sourceChild = posix.OpenAt(sourceFd, name, DirectoryFlags, 0);
        int homeChild = sourceChild < 0 ? -1 : posix.OpenAt(homeFd, name, DirectoryFlags, 0);
        try
        {
            if (homeChild >= 0)
            {
                Walk(sourceChild, homeChild, path + "/", old, actions, counts);
            }
        }
        finally
        {
            CloseIfOpen(sourceChild);
            CloseIfOpen(homeChild);
        }
    }

    /// <summary>Opens the directories holding <paramref name="path"/> on both sides (O_NOFOLLOW, component by component) and acts on its last name.</summary>
    private string? InParents(int sourceRoot, int homeRoot, string path, Func<int, int, string, string?> act)
    {
        string[] components = path.Split('/');
        var opened = new List<int>();
        try
        {
            int sourceDir = sourceRoot;
            int homeDir = homeRoot;
            foreach (string component in components[..^1])
            {
                sourceDir = posix.OpenAt(sourceDir, component, DirectoryFlags, 0);
                if (sourceDir < 0)
                {
                    return PosixException.Describe(PosixException.ErrnoOf(sourceDir));
                }

                opened.Add(sourceDir);
                homeDir = posix.OpenAt(homeDir, component, DirectoryFlags, 0);
                if (homeDir < 0)
                {
                    return PosixException.Describe(PosixException.ErrnoOf(homeDir));
                }

                opened.Add(homeDir);
            }

            return act(sourceDir, homeDir, components[^1]);
        }
        finally
        {
            opened.ForEach(fd => posix.Close(fd));
        }
    }

    private void CloseIfOpen(int fd)
    {
        if (fd >= 0)
        {
            posix.Close(fd);
        }
    }

    /// <summary>Copies one non-directory entry under a temporary name beside its target, then renames it into place.</summary>
    private string? Install(int sourceDirFd, string name, int homeDirFd, string target, bool replace)
    {
        string temporary = $".{target}.packet-tmp";
        TreeRemover.RemoveChild(posix, homeDirFd, temporary);
        PosixException.Check(posix.MkdirAt(homeDirFd, temporary, FilePermissions.S_IRWXU), "create", temporary);
        try
        {
            int staging = posix.OpenAt(homeDirFd, temporary, DirectoryFlags, 0);
            if (staging < 0)
            {
                return PosixException.Describe(PosixException.ErrnoOf(staging));
            }

            try
            {
                // One entry through the copy engine: a directory holding just that name.
                var report = new CopyReport();
                _copier.CopyEntry(sourceDirFd, name, staging, report);
                if (report.FatalError is { } fatal)
                {
                    return fatal;
                }

                if (report.Skipped > 0)
                {
                    return "it could not be read";
                }

                int moved = replace
                    ? posix.RenameAt(staging, name, homeDirFd, target, noReplace: false)
                    : NoReplaceRename.Move(posix, staging, name, homeDirFd, target);
                return moved < 0 ? PosixException.Describe(PosixException.ErrnoOf(moved)) : null;
            }
            finally
            {
                posix.Close(staging);
            }
        }
        finally
        {
            TreeRemover.RemoveChild(posix, homeDirFd, temporary);
        }
    }

    /// <summary>Copies the directory <paramref name="name"/> whole beside its target, then renames it into place.</summary>
    private string? AddDirectory(int sourceParentFd, string name, int homeDirFd)
    {
        int sourceDirFd = posix.OpenAt(sourceParentFd, name, DirectoryFlags, 0);
        if (sourceDirFd < 0)
        {
            return PosixException.Describe(PosixException.ErrnoOf(sourceDirFd));
        }

        string temporary = $".{name}.packet-tmp";
        TreeRemover.RemoveChild(posix, homeDirFd, temporary);
        PosixException.Check(posix.MkdirAt(homeDirFd, temporary, FilePermissions.S_IRWXU), "create", temporary);
        int staging = posix.OpenAt(homeDirFd, temporary, DirectoryFlags, 0);
        try
        {
            var report = new CopyReport();
            _copier.Copy(sourceDirFd, staging, -1, report);
            if (report.FatalError is { } fatal)
            {
                TreeRemover.RemoveChild(posix, homeDirFd, temporary);
                return fatal;
            }

            int moved = NoReplaceRename.Move(posix, homeDirFd, temporary, homeDirFd, name);
            return moved < 0 ? PosixException.Describe(PosixException.ErrnoOf(moved)) : null;
        }
        finally
        {
            posix.Close(staging);
            posix.Close(sourceDirFd);
            TreeRemover.RemoveChild(posix, homeDirFd, temporary);
        }
    }

    private static StreamWriter Writer(DirectoryHandle state, string identity)
    {
        int fd = state.CreateFile(PendingBaseline.TemporaryName, FileModes.Readable);
        var writer = new StreamWriter(new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write), new System.Text.UTF8Encoding(false)) { NewLine = "\n" };
        writer.WriteLine(ImageManifest.Header(identity));
        return writer;
    }

    private static StreamReader? Reader(DirectoryHandle state)
    {
        int fd = OpenManifest(state);
        return fd < 0 ? null : new StreamReader(new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read));
    }

    /// <summary>
    /// The recorded manifest, opened to read; -1 when there is none, or none that is a regular file
    /// (a link or a FIFO is never followed or waited on: the baseline is recorded anew over it).
    /// </summary>
    private static int OpenManifest(DirectoryHandle state)
    {
        try
        {
            return state.TryOpenFile(WorkspaceLayout.ImageManifest, out _);
        }
        catch (UnsafeWorkspaceException)
        {
            return -1;
        }
    }

}
