using System.Collections.Concurrent;
using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>
/// Copies the contents of one directory into another with the fidelity of <c>cp -a SRC/. DST/</c>:
/// data, mode, owner (as root), nanosecond times, symlinks as symlinks, hard links as hard links,
/// extended attributes, holes; FIFOs recreated; sockets and device nodes skipped and counted. An
/// entry that cannot be read is left out and named; the copy goes on.
/// </summary>
/// <remarks>
/// <para>The tree is walked through directory descriptors (openat and friends, O_NOFOLLOW), never
/// through path strings, so depth beyond PATH_MAX and hostile symlinks are non-issues and memory
/// stays bounded by depth, not by the number of entries.</para>
/// <para>One walker thread lists directories and creates them; workers copy everything else in
/// parallel. A directory receives its final mode and times after its last child is written.</para>
/// <para>Resumable: an entry already in the destination is kept when it is complete (a regular
/// file with the source's size and modification time, which are set last), otherwise replaced.
/// With an <c>existing</c> tree (a home that is already there), entries present in it are kept,
/// not copied: only what is missing lands in the destination, for the caller to move over.</para>
/// </remarks>
public sealed class TreeCopier(IPosix posix, CopyOptions options)
{
    // Read once per copier, never set: setting the umask is process-wide and would race with anything
    // else creating files. The agent never changes its own, so one read serves every copy.
    private readonly Lazy<FilePermissions> _creationMask = new(() => posix.ReadFileCreationMask() ?? FilePermissions.ALLPERMS);

    // One probe per destination volume, however many copies this copier makes (an upgrade makes one per entry).
    private readonly ConcurrentDictionary<ulong, VolumeTraits> _volumes = new();

    /// <summary>
    /// Copies the contents of <paramref name="sourceDirFd"/> into <paramref name="destinationDirFd"/>,
    /// skipping entries present in <paramref name="existingDirFd"/> (-1: none). The destination
    /// root gets the source root's metadata unless an existing tree is given. Counts land in
    /// <paramref name="report"/> as the copy runs, so a caller can show progress.
    /// </summary>
    public void Copy(int sourceDirFd, int destinationDirFd, int existingDirFd, CopyReport report)
    {
        var started = System.Diagnostics.Stopwatch.StartNew();
        var volume = Probe(destinationDirFd);
        var runOptions = volume.IsFatLike ? options with { Workers = 0 } : options;
        new CopyRun(posix, runOptions, report, destinationDirFd, _creationMask.Value, volume).Run(sourceDirFd, existingDirFd);
        report.Duration = started.Elapsed;
    }

    /// <summary>Copies one non-directory entry of <paramref name="sourceDirFd"/> into <paramref name="destinationDirFd"/>, with the same fidelity.</summary>
    public void CopyEntry(int sourceDirFd, string name, int destinationDirFd, CopyReport report) =>
        new CopyRun(posix, options with { Workers = 0 }, report, destinationDirFd, _creationMask.Value, Probe(destinationDirFd)).RunOne(sourceDirFd, name);

    /// <summary>What the volume of <paramref name="destinationDirFd"/> holds, probed there once per volume and copier.</summary>
    public VolumeTraits Probe(int destinationDirFd)
    {
        PosixException.Check(posix.FStat(destinationDirFd, out var destination), "stat", "the destination");
        return _volumes.GetOrAdd(destination.st_dev, _ => VolumeProbe.Probe(posix, destinationDirFd, options.PreserveOwnership));
    }

    private readonly record struct CopyJob(DirectoryNode Directory, string Name, byte Type);

    private sealed class CopyRun
    {
        private const OpenFlags DirectoryFlags = OpenFlags.O_RDONLY | OpenFlags.O_DIRECTORY | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;

        // O_NONBLOCK: a regular file that turned into a FIFO between readdir and open must not hang the copy.
        private const OpenFlags ReadFlags = OpenFlags.O_RDONLY | OpenFlags.O_NOFOLLOW | OpenFlags.O_NONBLOCK | OpenFlags.O_CLOEXEC;
        private const OpenFlags CreateFlags = OpenFlags.O_WRONLY | OpenFlags.O_CREAT | OpenFlags.O_EXCL | OpenFlags.O_NOFOLLOW | OpenFlags.O_CLOEXEC;
        private const FilePermissions PrivateDirectoryMode = FilePermissions.S_IRWXU;
        private const int QueueCapacity = 4096;
        private const int MaxTypeRetries = 2;

        private readonly IPosix _posix;
        private readonly CopyOptions _options;
        private readonly CopyReport _report;
        private readonly int _destinationRootFd;
        private readonly FileDataCopier _data;
        private readonly MetadataCopier _metadata;
        private readonly HardLinkRegistry _links = new();
        private readonly DirectoryReader _reader;
        private readonly BlockingCollection<CopyJob>? _queue;
        private readonly FilePermissions _creationMask;
        private readonly VolumeTraits _volume;
        private ulong _destinationDevice;
        private DestinationWriteException? _abort;

        public CopyRun(IPosix posix, CopyOptions options, CopyReport report, int destinationRootFd, FilePermissions creationMask, VolumeTraits volume)
        {
            _posix = posix;
            _options = options;
            _report = report;
            _report.Volume = volume;
            _volume = volume;
            _destinationRootFd = destinationRootFd;
            _data = new FileDataCopier(posix, options.Stop);
            _metadata = new MetadataCopier(posix, options, volume, report.Losses);
            _reader = new DirectoryReader(posix);
            _creationMask = creationMask;
            _queue = options.Workers > 0 ? new BlockingCollection<CopyJob>(new ConcurrentQueue<CopyJob>(), QueueCapacity) : null;
        }

        public void Run(int sourceRootFd, int existingRootFd)
        {
            PosixException.Check(_posix.FStat(sourceRootFd, out var sourceRoot), "stat", "the home");
            PosixException.Check(_posix.FStat(_destinationRootFd, out var destinationRoot), "stat", "the destination");
            _destinationDevice = destinationRoot.st_dev;
            var root = new DirectoryNode(null, string.Empty, sourceRootFd, _destinationRootFd, existingRootFd, sourceRoot, isNew: existingRootFd < 0);

            var workers = StartWorkers();
            try
            {
                Walk(root);
            }
            finally
            {
                _queue?.CompleteAdding();
                foreach (var worker in workers)
                {
                    worker.Join();
                }

                _queue?.Dispose();
            }

            ReportAbort();
        }

        public void RunOne(int sourceDirFd, string name)
        {
            PosixException.Check(_posix.FStat(sourceDirFd, out var sourceDirectory), "stat", "the source directory");
            PosixException.Check(_posix.FStat(_destinationRootFd, out var destination), "stat", "the destination");
            _destinationDevice = destination.st_dev;
            var directory = new DirectoryNode(null, string.Empty, sourceDirFd, _destinationRootFd, -1, sourceDirectory, isNew: false);
            try
            {
                Dispatch(directory, name, DirectoryReader.DT_UNKNOWN);
                ReleaseAndFinish(directory);
            }
            catch (DestinationWriteException failure)
            {
                Abort(failure);
            }

            ReportAbort();
        }

        /// <summary>Whether a mode given to open(2) or mkfifo(2) survives the umask whole, so no chmod is needed.</summary>
        private bool CreationKeeps(FilePermissions permissions) => (permissions & _creationMask) == 0;

        private void ReportAbort()
        {
            if (Volatile.Read(ref _abort) is { } failure)
            {
                _report.FatalError = failure.Message;
                _report.OutOfSpace = failure.OutOfSpace;
            }
            else if (_options.Stop.IsCancellationRequested)
            {
                _report.FatalError = "stopped before it finished";
                _report.Stopped = true;
            }
        }

        private Thread[] StartWorkers()
        {
            var workers = new Thread[_queue is null ? 0 : _options.Workers];
            for (int i = 0; i < workers.Length; i++)
            {
                workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"copy-{i}" };
                workers[i].Start();
            }

            return workers;
        }

        private void WorkerLoop()
        {
            foreach (var job in _queue!.GetConsumingEnumerable())
            {
                Process(job);
            }
        }

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
            int made = _posix.MkdirAt(parent.DestinationFd, name, PrivateDirectoryMode);
            if (made < 0 && PosixException.ErrnoOf(made) == Errno.EEXIST)
            {
                if (_posix.LStatAt(parent.DestinationFd, name, out var there) == 0 && !IsType(there, FilePermissions.S_IFDIR))
                {
                    RemoveLeftover(parent.DestinationFd, name, there, path);
                    made = _posix.MkdirAt(parent.DestinationFd, name, PrivateDirectoryMode);
                }
                else
                {
                    made = 0; // resuming into a directory a previous run created
                }
            }

            if (made < 0 && ErrnoMeaning.NameRefused(PosixException.ErrnoOf(made)))
            {
                _report.Losses.Add(LossKind.Names, path, $"create the directory: {PosixException.Describe(PosixException.ErrnoOf(made))}; its contents are left out");
                return -1;
            }

            if (made < 0)
            {
                throw new DestinationWriteException("create directory", path, PosixException.ErrnoOf(made));
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
            bool release = true;
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
                if (release)
                {
                    ReleaseAndFinish(job.Directory);
                }
            }
        }

        /// <summary>Copies one entry; false when it waits for a hard link's first copy, which then releases it.</summary>
        private bool CopyEntry(DirectoryNode directory, string name, byte type, int attempt)
        {
            if (directory.ExistingFd >= 0 && ExistsIn(directory.ExistingFd, name))
            {
                Interlocked.Increment(ref _report.KeptExisting);
                return true;
            }

            if (!NameHeld(directory, name))
            {
                return true;
            }

            switch (type)
            {
                case DirectoryReader.DT_REG:
                    return CopyRegularFile(directory, name, attempt, allowLink: true);
                case DirectoryReader.DT_SOCK:
                    Interlocked.Increment(ref _report.SkippedSockets);
                    return true;
                case DirectoryReader.DT_CHR or DirectoryReader.DT_BLK:
                    Interlocked.Increment(ref _report.SkippedDevices);
                    return true;
                default:
                    return CopyByLstat(directory, name, attempt);
            }
        }

        private bool CopyByLstat(DirectoryNode directory, string name, int attempt)
        {
            int result = _posix.LStatAt(directory.SourceFd, name, out var source);
            if (result < 0)
            {
                SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(result));
                return true;
            }

            return CopyByStat(directory, name, source, attempt);
        }

        private bool CopyByStat(DirectoryNode directory, string name, in Stat source, int attempt)
        {
            if (attempt > MaxTypeRetries)
            {
                Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "kept changing type while being copied; left out");
                return true;
            }

            switch (source.st_mode & FilePermissions.S_IFMT)
            {
                case FilePermissions.S_IFREG:
                    return CopyRegularFile(directory, name, attempt + 1, allowLink: true);
                case FilePermissions.S_IFLNK:
                    return CopyWithHardLinks(directory, name, source, CreateSymlink);
                case FilePermissions.S_IFIFO:
                    return CopyWithHardLinks(directory, name, source, CreateFifo);
                case FilePermissions.S_IFSOCK:
                    Interlocked.Increment(ref _report.SkippedSockets);
                    return true;
                case FilePermissions.S_IFCHR or FilePermissions.S_IFBLK:
                    Interlocked.Increment(ref _report.SkippedDevices);
                    return true;
                default:
                    Skipped(ProblemKind.ChangedDuringCopy, DirectoryNode.Join(directory.RelativePath, name), "became a directory while being copied; left out");
                    return true;
            }
        }

        private bool CopyRegularFile(DirectoryNode directory, string name, int attempt, bool allowLink)
        {
            int sourceFd = _posix.OpenAt(directory.SourceFd, name, ReadFlags, 0);
            if (sourceFd < 0)
            {
                var errno = PosixException.ErrnoOf(sourceFd);
                if (errno is Errno.ELOOP or Errno.ENXIO)
                {
                    return CopyByLstat(directory, name, attempt + 1); // a symlink or socket now
                }

                SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "open", errno);
                return true;
            }

            try
            {
                int statResult = _posix.FStat(sourceFd, out var source);
                if (statResult < 0)
                {
                    SourceProblem(DirectoryNode.Join(directory.RelativePath, name), "stat", PosixException.ErrnoOf(statResult));
                    return true;
                }

                if (!IsType(source, FilePermissions.S_IFREG))
                {
                    return CopyByStat(directory, name, source, attempt + 1);
                }

                if (!allowLink)
                {
                    WriteRegularFile(sourceFd, source, directory, name);
                    return true;
                }

                return CopyWithHardLinks(directory, name, source, (d, n, s) => WriteRegularFile(sourceFd, s, d, n));
            }
            finally
            {
                _posix.Close(sourceFd);
            }
        }

        /// <summary>Creates the destination file and fills it; false when it was left out.</summary>
        private bool WriteRegularFile(int sourceFd, in Stat source, DirectoryNode directory, string name)
        {
            string path = DirectoryNode.Join(directory.RelativePath, name);
            var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
            int destinationFd = _posix.OpenAt(directory.DestinationFd, name, CreateFlags, permissions);
            if (destinationFd < 0 && PosixException.ErrnoOf(destinationFd) == Errno.EEXIST)
            {
                if (KeepCompleteFile(directory, name, source, path))
                {
                    Interlocked.Increment(ref _report.ResumedFiles);
                    return true;
                }

                destinationFd = _posix.OpenAt(directory.DestinationFd, name, CreateFlags, permissions);
            }

            if (destinationFd < 0)
            {
                DestinationProblem(path, "create", PosixException.ErrnoOf(destinationFd));
                return false;
            }

            try
            {
                long copied = _data.Copy(sourceFd, destinationFd, source, _destinationDevice, path);
                if (copied < source.st_size)
                {
                    Named(ProblemKind.ChangedDuringCopy, path, $"shrank from {source.st_size} to {copied} bytes while being copied; copied what was there");
                }

                _metadata.ApplyToFile(sourceFd, destinationFd, source, _destinationDevice, path, modeSetAtCreation: CreationKeeps(permissions));
                Interlocked.Increment(ref _report.Files);
                Interlocked.Add(ref _report.Bytes, copied);
                Interlocked.Add(ref _report.AllocatedBytes, source.st_blocks * 512);
                return true;
            }
            catch (SourceReadException failure)
            {
                _posix.Close(destinationFd);
                destinationFd = -1;
                _posix.UnlinkAt(directory.DestinationFd, name, isDirectory: false);
                SourceProblem(path, "read", failure.Errno);
                return false;
            }
            finally
            {
                CloseIfOpen(destinationFd);
            }
        }

        /// <summary>
        /// Resuming: a file a previous run finished (same size and modification time, which is set
        /// last) stays; anything else there is removed so the file can be written afresh.
        /// </summary>
        private bool KeepCompleteFile(DirectoryNode directory, string name, in Stat source, string path)
        {
            if (_posix.LStatAt(directory.DestinationFd, name, out var there) < 0)
            {
                return false;
            }

            if (IsType(there, FilePermissions.S_IFREG) && there.st_size == source.st_size && SameModificationTime(there, source))
            {
                return true;
            }

            RemoveLeftover(directory.DestinationFd, name, there, path);
            return false;
        }

        /// <summary>
        /// Exact where the volume keeps nanoseconds; within the 2 s of FAT's rounding where it does not. A
        /// file cut short by a kill was written after its source's time, so it is still told apart.
        /// </summary>
        private bool SameModificationTime(in Stat there, in Stat source) =>
            (there.st_mtime == source.st_mtime && there.st_mtime_nsec == source.st_mtime_nsec)
            || (!_volume.ExactTimes && Math.Abs(there.st_mtime - source.st_mtime) <= 2);

        private bool CopyWithHardLinks(DirectoryNode directory, string name, in Stat source, Func<DirectoryNode, string, Stat, bool> create)
        {
            if (source.st_nlink <= 1)
            {
                create(directory, name, source);
                return true;
            }

            var inode = (source.st_dev, source.st_ino);
            switch (_links.TryClaim(inode, directory, name, out string primaryPath))
            {
                case HardLinkRegistry.Claim.Link:
                    LinkOrCopy(primaryPath, directory, name);
                    return true;
                case HardLinkRegistry.Claim.Deferred:
                    return false;
            }

            string? copiedPath = null;
            try
            {
                if (create(directory, name, source))
                {
                    copiedPath = DirectoryNode.Join(directory.RelativePath, name);
                }
            }
            finally
            {
                LinkWaiters(_links.Complete(inode, copiedPath), copiedPath);
            }

            return true;
        }

        private bool CreateSymlink(DirectoryNode directory, string name, Stat source)
        {
            string path = DirectoryNode.Join(directory.RelativePath, name);
            if (_volume.Symlinks is { } refused)
            {
                _report.Losses.Add(LossKind.Symlinks, path, refused);
                return false;
            }

            int read = _posix.ReadLinkAt(directory.SourceFd, name, out string target);
            if (read < 0)
            {
                SourceProblem(path, "read the symlink", PosixException.ErrnoOf(read));
                return false;
            }

            int made = _posix.SymlinkAt(target, directory.DestinationFd, name);
            if (made < 0 && PosixException.ErrnoOf(made) == Errno.EEXIST)
            {
                if (_posix.LStatAt(directory.DestinationFd, name, out var there) == 0)
                {
                    RemoveLeftover(directory.DestinationFd, name, there, path);
                }

                made = _posix.SymlinkAt(target, directory.DestinationFd, name);
            }

            if (made < 0)
            {
                EntryRefused(path, "create the symlink", PosixException.ErrnoOf(made), LossKind.Symlinks);
                return false;
            }

            _metadata.ApplyToUnopened(directory.DestinationFd, name, source, path);
            Interlocked.Increment(ref _report.Symlinks);
            return true;
        }

        private bool CreateFifo(DirectoryNode directory, string name, Stat source)
        {
            string path = DirectoryNode.Join(directory.RelativePath, name);
            if (_volume.Fifos is { } refused)
            {
                _report.Losses.Add(LossKind.Fifos, path, refused);
                return false;
            }

            var permissions = source.st_mode & FilePermissions.ACCESSPERMS;
            int made = _posix.MkfifoAt(directory.DestinationFd, name, permissions);
            if (made < 0 && PosixException.ErrnoOf(made) == Errno.EEXIST)
            {
                if (_posix.LStatAt(directory.DestinationFd, name, out var there) == 0)
                {
                    RemoveLeftover(directory.DestinationFd, name, there, path);
                }

                made = _posix.MkfifoAt(directory.DestinationFd, name, permissions);
            }

            if (made < 0 && ErrnoMeaning.FifoRefused(PosixException.ErrnoOf(made)))
            {
                // exfat-fuse answers EIO and leaves a regular file of that name: a FIFO's copy must not be one.
                if (_posix.LStatAt(directory.DestinationFd, name, out var left) == 0 && !IsType(left, FilePermissions.S_IFIFO))
                {
                    RemoveLeftover(directory.DestinationFd, name, left, path);
                }

                _report.Losses.Add(LossKind.Fifos, path, $"mknod: {PosixException.Describe(PosixException.ErrnoOf(made))}");
                return false;
            }

            if (made < 0)
            {
                DestinationProblem(path, "create the FIFO", PosixException.ErrnoOf(made));
                return false;
            }

            _metadata.ApplyToFifo(directory.DestinationFd, name, source, path, modeSetAtCreation: CreationKeeps(permissions));
            Interlocked.Increment(ref _report.Fifos);
            return true;
        }

        private void LinkWaiters(IReadOnlyList<HardLinkRegistry.Waiter> waiters, string? primaryPath)
        {
            foreach (var waiter in waiters)
            {
                try
                {
                    if (Aborted)
                    {
                        continue;
                    }

                    if (primaryPath is not null)
                    {
                        LinkOrCopy(primaryPath, waiter.Directory, waiter.Name);
                    }
                    else if (!CopyEntry(waiter.Directory, waiter.Name, DirectoryReader.DT_UNKNOWN, attempt: 0))
                    {
                        continue; // it waits again, on a new first copy, which releases it
                    }
                }
                catch (DestinationWriteException failure)
                {
                    Abort(failure);
                }

                ReleaseAndFinish(waiter.Directory);
            }
        }

        private void LinkOrCopy(string primaryPath, DirectoryNode directory, string name)
        {
            string path = DirectoryNode.Join(directory.RelativePath, name);
            if (_volume.HardLinks is { } refused)
            {
                _report.Losses.Add(LossKind.HardLinks, path, refused);
                CopyRegularFile(directory, name, attempt: 0, allowLink: false);
                return;
            }

            int linked = _posix.LinkAt(_destinationRootFd, primaryPath, directory.DestinationFd, name);
            if (linked < 0 && PosixException.ErrnoOf(linked) == Errno.EEXIST)
            {
                if (SameInode(directory.DestinationFd, name, primaryPath))
                {
                    Interlocked.Increment(ref _report.HardLinks);
                    return; // linked by a previous run
                }

                if (_posix.LStatAt(directory.DestinationFd, name, out var there) == 0)
                {
                    RemoveLeftover(directory.DestinationFd, name, there, path);
                }

                linked = _posix.LinkAt(_destinationRootFd, primaryPath, directory.DestinationFd, name);
            }

            if (linked >= 0)
            {
                Interlocked.Increment(ref _report.HardLinks);
                return;
            }

            var errno = PosixException.ErrnoOf(linked);
            if (ErrnoMeaning.StopsTheCopy(errno))
            {
                throw new DestinationWriteException("link", path, errno);
            }

            // EMLINK, a volume without hard links, or a first copy's path past PATH_MAX: a separate copy keeps the data.
            _report.Losses.Add(LossKind.HardLinks, path, $"link to {NativeName.Display(primaryPath)}: {PosixException.Describe(errno)}");
            CopyRegularFile(directory, name, attempt: 0, allowLink: false);
        }

        private bool SameInode(int dirFd, string name, string primaryPath) =>
            _posix.LStatAt(dirFd, name, out var there) == 0
            && _posix.LStatAt(_destinationRootFd, primaryPath, out var primary) == 0
            && there.st_ino == primary.st_ino && there.st_dev == primary.st_dev;

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
                _posix.Close(node.DestinationFd);
                CloseIfOpen(node.ExistingFd);
                node = node.Parent;
            }
        }

        // ---- Helpers.

        /// <summary>
        /// FAT-like volumes store names as UTF-16, so a name that is not UTF-8 has no faithful form there.
        /// Left out before it is tried: exfat-fuse accepts one holding an encoded surrogate, then dies
        /// listing its directory (as it does under cp -a), which takes the whole volume away.
        /// </summary>
        private bool NameHeld(DirectoryNode directory, string name)
        {
            if (!_volume.IsFatLike || NativeName.IsUtf8(name))
            {
                return true;
            }

            _report.Losses.Add(LossKind.Names, DirectoryNode.Join(directory.RelativePath, name), "not UTF-8, which a FAT-like volume cannot store");
            return false;
        }

        private byte TypeOf(int dirFd, string name)
        {
            if (_posix.LStatAt(dirFd, name, out var stat) < 0)
            {
                return DirectoryReader.DT_UNKNOWN;
            }

            return IsType(stat, FilePermissions.S_IFDIR) ? DirectoryReader.DT_DIR : DirectoryReader.DT_UNKNOWN;
        }

        private bool ExistsIn(int dirFd, string name)
        {
            int result = _posix.LStatAt(dirFd, name, out _);
            // Anything but "not there" counts as there: an existing home is never overwritten.
            return result >= 0 || PosixException.ErrnoOf(result) != Errno.ENOENT;
        }

        private void RemoveLeftover(int dirFd, string name, in Stat there, string path)
        {
            int removed = IsType(there, FilePermissions.S_IFDIR)
                ? TreeRemover.RemoveChild(_posix, dirFd, name)
                : _posix.UnlinkAt(dirFd, name, isDirectory: false);
            if (removed < 0 && PosixException.ErrnoOf(removed) != Errno.ENOENT)
            {
                throw new DestinationWriteException("remove an incomplete copy of", path, PosixException.ErrnoOf(removed));
            }
        }

        private void SourceProblem(string path, string operation, Errno errno)
        {
            if (errno == Errno.ENOENT)
            {
                Skipped(ProblemKind.ChangedDuringCopy, path, "vanished while being copied");
                return;
            }

            Skipped(ProblemKind.Unreadable, path, $"{operation}: {PosixException.Describe(errno)}; left out");
        }

        private void DestinationProblem(string path, string operation, Errno errno)
        {
            if (ErrnoMeaning.StopsTheCopy(errno))
            {
                throw new DestinationWriteException(operation, path, errno);
            }

            if (ErrnoMeaning.NameRefused(errno))
            {
                _report.Losses.Add(LossKind.Names, path, $"{operation}: {PosixException.Describe(errno)}");
                return;
            }

            Skipped(ProblemKind.NotWritten, path, $"{operation} in the workspace: {PosixException.Describe(errno)}; left out");
        }

        /// <summary>
        /// A symlink or FIFO the volume refused although the probe found it holds them: then it is the
        /// name; without a probe's answer, a refusal of the kind itself.
        /// </summary>
        private void EntryRefused(string path, string operation, Errno errno, LossKind kind)
        {
            if (ErrnoMeaning.VolumeRefuses(errno) && !ErrnoMeaning.NameRefused(errno))
            {
                _report.Losses.Add(kind, path, $"{operation}: {PosixException.Describe(errno)}");
                return;
            }

            DestinationProblem(path, operation, errno);
        }

        private void Skipped(ProblemKind kind, string path, string detail)
        {
            switch (kind)
            {
                case ProblemKind.Unreadable:
                    Interlocked.Increment(ref _report.SkippedUnreadable);
                    break;
                case ProblemKind.NotWritten:
                    Interlocked.Increment(ref _report.NotWritten);
                    break;
                default:
                    Interlocked.Increment(ref _report.ChangedDuringCopy);
                    break;
            }

            Named(kind, path, detail);
        }

        private void Named(ProblemKind kind, string path, string detail)
        {
            var problem = new CopyProblem(kind, path, detail);
            if (_report.AddProblem(problem))
            {
                _options.OnProblem?.Invoke(problem);
            }
        }

        private bool Aborted => Volatile.Read(ref _abort) is not null || _options.Stop.IsCancellationRequested;

        private void Abort(DestinationWriteException failure)
        {
            Interlocked.CompareExchange(ref _abort, failure, null);
        }

        private void CloseIfOpen(int fd)
        {
            if (fd >= 0)
            {
                _posix.Close(fd);
            }
        }

        private static bool IsType(in Stat stat, FilePermissions type) => (stat.st_mode & FilePermissions.S_IFMT) == type;
    }
}
