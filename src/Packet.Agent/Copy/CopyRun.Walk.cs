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
            if (!Aborted)
            {
                try
                {
                    child = OpenSubdirectory(item.Parent, item.Name);
                }
                catch (DestinationWriteException failure)
                {
                    Abort(failure);
                }
            }

            if (child is null)
            {
                ReleaseAndFinish(item.Parent);
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
            if (Aborted)
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
            Skipped(ProblemKind.Unreadable, directory.RelativePath, $"list the directory: {PosixException.Describe(PosixException.ErrnoOf(listed))}; its contents are left out");
        }

        // Reverse, so the stack hands them out in listing order.
        for (int i = subdirectories.Count - 1; i >= 0; i--)
        {
            directory.AddPending();
            stack.Push((directory, subdirectories[i]));
        }

        ReleaseAndFinish(directory);
    }

    private DirectoryNode? OpenSubdirectory(DirectoryNode parent, string name)
    {
        if (!NameHeld(parent, name))
        {
            return null;
        }

        string path = DirectoryNode.Join(parent.RelativePath, name);
        int existingFd = -1;
        if (parent.ExistingFd >= 0 && _posix.LStatAt(parent.ExistingFd, name, out var existing) == 0)
        {
            existingFd = IsType(existing, FilePermissions.S_IFDIR) ? _posix.OpenAt(parent.ExistingFd, name, DirectoryFlags, 0) : -1;
            if (existingFd < 0)
            {
                Interlocked.Increment(ref _report.KeptExisting); // the home has something else there: it stays
                return null;
            }
        }

        int sourceFd = _posix.OpenAt(parent.SourceFd, name, DirectoryFlags, 0);
        if (sourceFd < 0)
        {
            CloseIfOpen(existingFd);
            var errno = PosixException.ErrnoOf(sourceFd);
            if (errno is Errno.ELOOP or Errno.ENOTDIR)
            {
                // No longer a directory (replaced since it was listed): copy whatever it is now.
                Dispatch(parent, name, DirectoryReader.DT_UNKNOWN);
            }
            else
            {
                SourceProblem(path, "open the directory", errno);
            }

            return null;
        }

        bool opened = false;
        int destinationFd = -1;
        try
        {
            var statResult = _posix.FStat(sourceFd, out var source);
            if (statResult < 0)
            {
                SourceProblem(path, "stat the directory", PosixException.ErrnoOf(statResult));
                return null;
            }

            if (_options.ExcludedDirectory is { } excluded && source.st_dev == excluded.Device && source.st_ino == excluded.Inode)
            {
                Interlocked.Increment(ref _report.ExcludedDirectories);
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
                Interlocked.Increment(ref _report.Directories);
            }

            opened = true;
            return node;
        }
        finally
        {
            if (!opened)
            {
                CloseIfOpen(sourceFd);
                CloseIfOpen(existingFd);
                CloseIfOpen(destinationFd);
            }
        }
    }

    /// <summary>Creates (or, when resuming, reuses) a private directory to fill; its real mode comes last. -1 when the volume cannot hold its name.</summary>
    private int CreateDirectory(DirectoryNode parent, string name, string path)
    {
        // Resuming: a directory a previous run created is filled further.
        var creation = CreateOverLeftover(parent.DestinationFd, name, path, () => _posix.MkdirAt(parent.DestinationFd, name, PrivateDirectoryMode), there => IsType(there, FilePermissions.S_IFDIR), out int made);
        if (creation == Creation.Failed)
        {
            var errno = PosixException.ErrnoOf(made);
            if (!ErrnoMeaning.NameRefused(errno))
            {
                throw new DestinationWriteException("create directory", path, errno);
            }

            _report.Losses.Add(LossKind.Names, path, $"create the directory: {PosixException.Describe(errno)}; its contents are left out");
            return -1;
        }

        int fd = _posix.OpenAt(parent.DestinationFd, name, DirectoryFlags, 0);
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
        var release = Release.Now;
        try
        {
            if (!Aborted)
            {
                release = CopyEntry(job.Directory, job.Name, job.Type, attempt: 0);
            }
        }
        catch (DestinationWriteException failure)
        {
            Abort(failure);
        }
        catch (OperationCanceledException)
        {
            // Stopped mid-file: the file is left short, which a resumed copy redoes.
        }
        finally
        {
            if (release == Release.Now)
            {
                ReleaseAndFinish(job.Directory);
            }
        }
    }

    // ---- Directories finish bottom-up, each after its last child.

    private void ReleaseAndFinish(DirectoryNode directory)
    {
        var node = directory;
        while (node.Release())
        {
            if (!Aborted && node.IsNew)
            {
                try
                {
                    _metadata.ApplyToDirectory(node.SourceFd, node.DestinationFd, node.Source, _destinationDevice, node.RelativePath);
                }
                catch (DestinationWriteException failure)
                {
                    Abort(failure);
                }
            }

            if (node.Parent is null)
            {
                return; // the root's descriptors belong to the caller
            }

            _posix.Close(node.SourceFd);
            if (node.IsNew && !Aborted)
            {
                try
                {
                    CloseComplete(node.DestinationFd, node.RelativePath);
                }
                catch (DestinationWriteException failure)
                {
                    Abort(failure);
                }
            }
            else
            {
                _posix.Close(node.DestinationFd);
            }

            CloseIfOpen(node.ExistingFd);
            node = node.Parent;
        }
    }
}
