using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>The walker: directories listed depth-first and created; every other entry a job; directories finished bottom-up.</summary>
internal sealed partial class CopyRun
{
    // ---- The walker: lists directories depth-first and creates them; everything else is a job.

    private void Walk(DirectoryNode root)
    {
        var stack = new Stack<(DirectoryNode Parent, string Name)>();
        var subdirectories = new List<string>();
        ListAndRelease(root, subdirectories, stack);

        while (stack.TryPop(out var item))
        {
            DirectoryNode? child = null;
            if (!_context.Aborted)
            {
                try
                {
                    child = OpenSubdirectory(item.Parent, item.Name);
                }
                catch (DestinationWriteException failure)
                {
                    _context.Abort(failure);
                }
            }

            if (child is null)
            {
                _finisher.ReleaseAndFinish(item.Parent);
                continue;
            }

            ListAndRelease(child, subdirectories, stack);
        }
    }

    private void ListAndRelease(DirectoryNode directory, List<string> subdirectories, Stack<(DirectoryNode, string)> stack)
    {
        subdirectories.Clear();
        int listed = _reader.ReadAll(directory.SourceFd, entry =>
        {
            if (_context.Aborted)
            {
                return;
            }

            byte type = entry.Type == DirectoryReader.DT_UNKNOWN ? TypeOf(directory.SourceFd, entry.Name) : entry.Type;
            if (type == DirectoryReader.DT_DIR)
            {
                subdirectories.Add(entry.Name);
            }
            else
            {
                Dispatch(directory, entry.Name, type);
            }
        });

        if (listed < 0)
        {
            _context.Skipped(ProblemKind.Unreadable, directory.RelativePath, $"list the directory: {PosixException.Describe(PosixException.ErrnoOf(listed))}; its contents are left out");
        }

        // Reverse, so the stack hands them out in listing order.
        for (int i = subdirectories.Count - 1; i >= 0; i--)
        {
            directory.AddPending();
            stack.Push((directory, subdirectories[i]));
        }

        _finisher.ReleaseAndFinish(directory);
    }

    private DirectoryNode? OpenSubdirectory(DirectoryNode parent, string name)
    {
        if (!_context.NameHeld(parent, name))
        {
            return null;
        }

        string path = DirectoryNode.Join(parent.RelativePath, name);
        if (!TryOpenExisting(parent, name, out int existingFd))
        {
            return null;
        }

        int sourceFd = _context.Posix.OpenAt(parent.SourceFd, name, DirectoryFlags, 0);
        if (sourceFd < 0)
        {
            _context.CloseIfOpen(existingFd);
            SourceDirectoryNotOpened(parent, name, path, PosixException.ErrnoOf(sourceFd));
            return null;
        }

        bool opened = false;
        int destinationFd = -1;
        try
        {
            var statResult = _context.Posix.FStat(sourceFd, out var source);
            if (statResult < 0)
            {
                _context.SourceProblem(path, "stat the directory", PosixException.ErrnoOf(statResult));
                return null;
            }

            if (Excluded(source))
            {
                return null;
            }

            destinationFd = CreateDirectory(parent, name, path);
            if (destinationFd < 0)
            {
                return null;
            }

            var node = new DirectoryNode(parent, name, sourceFd, destinationFd, existingFd, source, isNew: existingFd < 0);
            if (node.IsNew)
            {
                Interlocked.Increment(ref _context.Report.Directories);
            }

            opened = true;
            return node;
        }
        finally
        {
            if (!opened)
            {
                _context.CloseIfOpen(sourceFd);
                _context.CloseIfOpen(existingFd);
                _context.CloseIfOpen(destinationFd);
            }
        }
    }

    /// <summary>
    /// When copying into an existing home, the home's own directory of that name, open (-1: it has
    /// none); false when the home has something else there, which stays.
    /// </summary>
    private bool TryOpenExisting(DirectoryNode parent, string name, out int existingFd)
    {
        existingFd = -1;
        if (parent.ExistingFd < 0 || _context.Posix.LStatAt(parent.ExistingFd, name, out var existing) != 0)
        {
            return true;
        }

        existingFd = CopyContext.IsType(existing, FilePermissions.S_IFDIR) ? _context.Posix.OpenAt(parent.ExistingFd, name, DirectoryFlags, 0) : -1;
        if (existingFd >= 0)
        {
            return true;
        }

        Interlocked.Increment(ref _context.Report.KeptExisting);
        return false;
    }

    /// <summary>The directory never copied (the workspace itself, when the home contains it): counted.</summary>
    private bool Excluded(in Stat source)
    {
        bool excluded = _context.Options.ExcludedDirectory is { } directory && source.st_dev == directory.Device && source.st_ino == directory.Inode;
        if (excluded)
        {
            Interlocked.Increment(ref _context.Report.ExcludedDirectories);
        }

        return excluded;
    }

    private void SourceDirectoryNotOpened(DirectoryNode parent, string name, string path, Errno errno)
    {
        if (errno is Errno.ELOOP or Errno.ENOTDIR)
        {
            // No longer a directory (replaced since it was listed): copy whatever it is now.
            Dispatch(parent, name, DirectoryReader.DT_UNKNOWN);
        }
        else
        {
            _context.SourceProblem(path, "open the directory", errno);
        }
    }

    /// <summary>Creates (or, when resuming, reuses) a private directory to fill; its real mode comes last. -1 when the volume cannot hold its name.</summary>
    private int CreateDirectory(DirectoryNode parent, string name, string path)
    {
        // Resuming: a directory a previous run created is filled further.
        var creation = _context.CreateOverLeftover(parent.DestinationFd, name, path, () => _context.Posix.MkdirAt(parent.DestinationFd, name, FileModes.PrivateDirectory), there => CopyContext.IsType(there, FilePermissions.S_IFDIR), out int made);
        if (creation == Creation.Failed)
        {
            var errno = PosixException.ErrnoOf(made);
            if (!ErrnoMeaning.NameRefused(errno))
            {
                throw new DestinationWriteException("create directory", path, errno);
            }

            _context.Report.Losses.Add(LossKind.Names, path, $"create the directory: {PosixException.Describe(errno)}; its contents are left out");
            return -1;
        }

        int fd = _context.Posix.OpenAt(parent.DestinationFd, name, DirectoryFlags, 0);
        return fd >= 0 ? fd : throw new DestinationWriteException("open directory", path, PosixException.ErrnoOf(fd));
    }

    private void Dispatch(DirectoryNode directory, string name, byte type)
    {
        directory.AddPending();
        var job = new CopyJob(directory, name, type);
        if (_queue is null)
        {
            Process(job);
        }
        else
        {
            _queue.Add(job);
        }
    }

    // ---- Jobs: one non-directory entry each, on a worker (or the walker when there are none).

    private void Process(CopyJob job)
    {
        var release = EntryCopier.Release.Now;
        try
        {
            if (!_context.Aborted)
            {
                release = _entries.CopyEntry(job.Directory, job.Name, job.Type, attempt: 0);
            }
        }
        catch (DestinationWriteException failure)
        {
            _context.Abort(failure);
        }
        catch (OperationCanceledException)
        {
            // Stopped mid-file: the file is left short, which a resumed copy redoes.
        }
        finally
        {
            if (release == EntryCopier.Release.Now)
            {
                _finisher.ReleaseAndFinish(job.Directory);
            }
        }
    }

    private byte TypeOf(int dirFd, string name)
    {
        if (_context.Posix.LStatAt(dirFd, name, out var stat) < 0)
        {
            return DirectoryReader.DT_UNKNOWN;
        }

        return CopyContext.IsType(stat, FilePermissions.S_IFDIR) ? DirectoryReader.DT_DIR : DirectoryReader.DT_UNKNOWN;
    }
}
