using Mono.Unix.Native;
using Packet.Agent.Posix;

namespace Packet.Agent.Copy;

/// <summary>Hard links: the first name of an inode is copied, the others linked to it once it is complete (<see cref="HardLinkRegistry"/>).</summary>
internal sealed partial class EntryCopier
{
    private Release CopyWithHardLinks(DirectoryNode directory, string name, in Stat source, CreateCopy create)
    {
        if (source.st_nlink <= 1)
        {
            create(directory, name, source);
            return Release.Now;
        }

        var inode = (source.st_dev, source.st_ino);
        switch (_links.TryClaim(inode, directory, name, out string primaryPath))
        {
            case HardLinkRegistry.Claim.Link:
                LinkOrCopy(primaryPath, directory, name);
                return Release.Now;
            case HardLinkRegistry.Claim.Deferred:
                return Release.ByFirstCopy;
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

        return Release.Now;
    }

    private void LinkWaiters(IReadOnlyList<HardLinkRegistry.Waiter> waiters, string? primaryPath)
    {
        foreach (var waiter in waiters)
        {
            try
            {
                if (context.Aborted)
                {
                    continue;
                }

                if (primaryPath is not null)
                {
                    LinkOrCopy(primaryPath, waiter.Directory, waiter.Name);
                }
                else if (CopyEntry(waiter.Directory, waiter.Name, DirectoryReader.DT_UNKNOWN, attempt: 0) == Release.ByFirstCopy)
                {
                    continue; // it waits again, on a new first copy, which releases it
                }
            }
            catch (DestinationWriteException failure)
            {
                context.Abort(failure);
            }

            finisher.ReleaseAndFinish(waiter.Directory);
        }
    }

    private void LinkOrCopy(string primaryPath, DirectoryNode directory, string name)
    {
        string path = DirectoryNode.Join(directory.RelativePath, name);
        if (context.Volume.HardLinks is { } refused)
        {
            context.Report.Losses.Add(LossKind.HardLinks, path, refused);
            CopyRegularFile(directory, name, attempt: 0, allowLink: false);
            return;
        }

        // A name a previous run already linked to this first copy stays.
        if (context.CreateOverLeftover(directory.DestinationFd, name, path, () => context.Posix.LinkAt(context.DestinationRootFd, primaryPath, directory.DestinationFd, name), there => IsLinkedTo(there, primaryPath), out int linked) != Creation.Failed)
        {
            Interlocked.Increment(ref context.Report.HardLinks);
            return;
        }

        var errno = PosixException.ErrnoOf(linked);
        if (ErrnoMeaning.StopsTheCopy(errno))
        {
            throw new DestinationWriteException("link", path, errno);
        }

        // EMLINK, a volume without hard links, or a first copy's path past PATH_MAX: a separate copy keeps the data.
        context.Report.Losses.Add(LossKind.HardLinks, path, $"link to {NativeName.Display(primaryPath)}: {PosixException.Describe(errno)}");
        CopyRegularFile(directory, name, attempt: 0, allowLink: false);
    }

    private bool IsLinkedTo(in Stat there, string primaryPath) =>
        context.Posix.LStatAt(context.DestinationRootFd, primaryPath, out var primary) == 0
        && there.st_ino == primary.st_ino && there.st_dev == primary.st_dev;
}
