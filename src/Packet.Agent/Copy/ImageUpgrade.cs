using Microsoft.Win32.SafeHandles;
using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Copy;

/// <summary>What an upgrade did (or, in a dry run, would do).</summary>
public sealed class UpgradeReport
{
    public int Added { get; set; }

    public int Updated { get; set; }

    public int KeptChanged { get; set; }

    public int LeftDeleted { get; set; }

    public int Failed { get; set; }

    public bool Changed => Added + Updated + KeptChanged > 0;

    public string Summary =>
        $"{Added} added, {Updated} updated, {KeptChanged} of your changes kept (the image's version beside each as NAME{ImageUpgrade.NewSuffix}), {LeftDeleted} you deleted left deleted"
        + (Failed > 0 ? $", {Failed} failed" : string.Empty);
}

/// <summary>
/// Brings a new image's home into a seeded home the way dpkg treats conffiles. Against the manifest
/// of what was seeded (or last upgraded): an entry new in the image and absent from the home is
/// added; one the image changed and the user did not is updated; one both changed stays the user's,
/// with the image's version beside it as <c>NAME.packet-new</c>; one the user deleted stays deleted.
/// The home is walked beside the new image through descriptors (never following a symlink); the
/// old manifest is read as a stream in the same order, and the new one written as one.
/// </summary>
public sealed class ImageUpgrade(IPosix posix, CopyOptions copyOptions, Action<string> onAction)
{
    public const string NewSuffix = ".packet-new";
    private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
    private const FilePermissions ManifestMode = FilePermissions.S_IRUSR | FilePermissions.S_IWUSR | FilePermissions.S_IRGRP | FilePermissions.S_IROTH;

    private readonly DirectoryReader _reader = new(posix, 64 * 1024);
    private readonly TreeCopier _copier = new(posix, copyOptions);

    /// <summary>Writes the manifest of <paramref name="source"/> as the baseline for later upgrades (after a seed, or adopting a workspace).</summary>
    public void RecordBaseline(DirectoryHandle state, DirectoryHandle source, string identity)
    {
        using var output = Writer(state, identity);
        Walk(source.Fd, -1, string.Empty, null, output, new UpgradeReport(), decide: false, dryRun: false);
        Commit(state, output);
    }

    /// <summary>Brings <paramref name="source"/> (the new image's home) into <paramref name="home"/> against the old manifest.</summary>
    public UpgradeReport Upgrade(DirectoryHandle state, DirectoryHandle source, DirectoryHandle home, string identity, bool dryRun)
    {
        var report = new UpgradeReport();
        using var old = new ManifestCursor(Reader(state));
        using var output = dryRun ? null : Writer(state, identity);
        Walk(source.Fd, home.Fd, string.Empty, old, output, report, decide: true, dryRun);
        if (output is not null)
        {
            Commit(state, output);
        }

        return report;
    }

    /// <summary>The image identity the manifest was written for, or null when there is no (readable) manifest.</summary>
    public static string? RecordedIdentity(DirectoryHandle state, IPosix posix)
    {
        int fd = posix.OpenAt(state.Fd, ImageManifest.FileName, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
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

    private void Walk(int sourceFd, int homeFd, string prefix, ManifestCursor? old, StreamWriter? output, UpgradeReport report, bool decide, bool dryRun)
    {
        foreach (string name in ImageManifest.SortedNames(_reader, sourceFd))
        {
            if (posix.LStatAt(sourceFd, name, out var stat) < 0)
            {
                continue;
            }

            var type = stat.st_mode & FilePermissions.S_IFMT;
            if (type is FilePermissions.S_IFSOCK or FilePermissions.S_IFCHR or FilePermissions.S_IFBLK)
            {
                continue; // never copied, never recorded
            }

            string path = prefix + name;
            var entry = ImageManifest.Describe(posix, sourceFd, name, path, stat);
            output?.WriteLine(ImageManifest.Format(entry));
            var before = old?.Take(path);
            Stat there = default;
            bool inHome = homeFd >= 0 && posix.LStatAt(homeFd, name, out there) >= 0;
            var homeType = inHome ? there.st_mode & FilePermissions.S_IFMT : 0;

            if (type == FilePermissions.S_IFDIR)
            {
                int sourceChild = posix.OpenAt(sourceFd, name, DirectoryFlags, 0);
                if (sourceChild < 0)
                {
                    continue;
                }

                try
                {
                    if (decide && !inHome && before is null && homeFd >= 0)
                    {
                        Act(report, dryRun, $"added {path}/ (new in the image)", () => AddDirectory(sourceChild, homeFd, name), r => r.Added++);
                        Walk(sourceChild, -1, path + "/", old, output, report, decide: false, dryRun);
                        continue;
                    }

                    if (decide && !inHome && before is not null)
                    {
                        report.LeftDeleted++;
                    }

                    int homeChild = decide && inHome && homeType == FilePermissions.S_IFDIR ? posix.OpenAt(homeFd, name, DirectoryFlags, 0) : -1;
                    try
                    {
                        Walk(sourceChild, homeChild, path + "/", old, output, report, decide && homeChild >= 0, dryRun);
                    }
                    finally
                    {
                        if (homeChild >= 0)
                        {
                            posix.Close(homeChild);
                        }
                    }
                }
                finally
                {
                    posix.Close(sourceChild);
                }

                continue;
            }

            if (!decide || homeFd < 0)
            {
                continue;
            }

            if (!inHome)
            {
                if (before is null)
                {
                    Act(report, dryRun, $"added {path} (new in the image)", () => Install(sourceFd, name, homeFd, name, replace: false), r => r.Added++);
                }
                else
                {
                    report.LeftDeleted++; // the user deleted it: never resurrected
                }

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

            if (before is not null && current.SameAs(before))
            {
                Act(report, dryRun, $"updated {path} (changed in the image, untouched by you)", () => Install(sourceFd, name, homeFd, name, replace: true), r => r.Updated++);
            }
            else
            {
                Act(report, dryRun, $"kept your {path}; the image's version is beside it as {path}{NewSuffix}", () => Install(sourceFd, name, homeFd, name + NewSuffix, replace: true), r => r.KeptChanged++);
            }
        }
    }

    private void Act(UpgradeReport report, bool dryRun, string action, Func<string?> apply, Action<UpgradeReport> count)
    {
        if (dryRun)
        {
            onAction("would have " + action);
            count(report);
            return;
        }

        if (apply() is { } problem)
        {
            report.Failed++;
            onAction($"could not bring in {action.Split(' ', 3)[1]}: {problem}");
            return;
        }

        count(report);
        onAction(action);
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

    private string? AddDirectory(int sourceDirFd, int homeDirFd, string name)
    {
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
            TreeRemover.RemoveChild(posix, homeDirFd, temporary);
        }
    }

    private static StreamWriter Writer(DirectoryHandle state, string identity)
    {
        int fd = state.CreateFile(TemporaryName, ManifestMode);
        var writer = new StreamWriter(new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Write), new System.Text.UTF8Encoding(false)) { NewLine = "\n" };
        writer.WriteLine(ImageManifest.Header(identity));
        return writer;
    }

    private StreamReader? Reader(DirectoryHandle state)
    {
        int fd = posix.OpenAt(state.Fd, ImageManifest.FileName, OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC, 0);
        return fd < 0 ? null : new StreamReader(new FileStream(new SafeFileHandle(fd, ownsHandle: true), FileAccess.Read));
    }

    private void Commit(DirectoryHandle state, StreamWriter output)
    {
        output.Flush();
        ((FileStream)output.BaseStream).Flush(flushToDisk: true);
        PosixException.Check(posix.RenameAt(state.Fd, TemporaryName, state.Fd, ImageManifest.FileName, noReplace: false), "replace", state.PathOf(ImageManifest.FileName));
    }

    private static string TemporaryName => $".{ImageManifest.FileName}.packet-tmp-{Environment.ProcessId}";

    /// <summary>Reads the old manifest in step with the walk: entries the new image lacks are passed over.</summary>
    private sealed class ManifestCursor(StreamReader? reader) : IDisposable
    {
        private ManifestEntry? _next;
        private bool _started;

        public ManifestEntry? Take(string path)
        {
            while (Peek() is { } next && ImageManifest.ComparePaths(next.Path, path) < 0)
            {
                _next = null;
            }

            if (Peek() is { } match && match.Path == path)
            {
                _next = null;
                return match;
            }

            return null;
        }

        public void Dispose() => reader?.Dispose();

        private ManifestEntry? Peek()
        {
            if (reader is null)
            {
                return null;
            }

            if (!_started)
            {
                _started = true;
                reader.ReadLine(); // the header
            }

            while (_next is null && reader.ReadLine() is { } line)
            {
                _next = ImageManifest.Parse(line);
            }

            return _next;
        }
    }
}
