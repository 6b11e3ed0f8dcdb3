namespace Packet.Agent.Copy;

/// <summary>
/// Keeps hard links hard: the first name seen for an inode (nlink > 1 only, so ordinary files cost
/// nothing) is copied; every later name becomes a link to that copy. Names that arrive while the
/// first copy is still being written wait here instead of blocking a worker.
/// </summary>
internal sealed class HardLinkRegistry
{
    private readonly Dictionary<(ulong Device, ulong Inode), Group> _groups = [];
    private readonly Lock _lock = new();

    public enum Claim
    {
        /// <summary>First name of this inode: copy it, then call <see cref="Complete"/>.</summary>
        Copy,

        /// <summary>Already copied: link to the returned path.</summary>
        Link,

        /// <summary>Being copied right now: the name was queued and is linked when the copy completes.</summary>
        Deferred,
    }

    public readonly record struct Waiter(DirectoryNode Directory, string Name);

    public Claim TryClaim((ulong Device, ulong Inode) inode, DirectoryNode directory, string name, out string primaryPath)
    {
        primaryPath = string.Empty;
        lock (_lock)
        {
            if (!_groups.TryGetValue(inode, out var group) || group.Failed)
            {
                // No copy yet, or the previous attempt failed: this name tries.
                _groups[inode] = new Group();
                return Claim.Copy;
            }

            if (group.PrimaryPath is not null)
            {
                primaryPath = group.PrimaryPath;
                return Claim.Link;
            }

            (group.Waiters ??= []).Add(new Waiter(directory, name));
            return Claim.Deferred;
        }
    }

    /// <summary>Records the copy's path (null when it failed) and hands back the names that waited for it.</summary>
    public IReadOnlyList<Waiter> Complete((ulong Device, ulong Inode) inode, string? primaryPath)
    {
        lock (_lock)
        {
            var group = _groups[inode];
            group.PrimaryPath = primaryPath;
            group.Failed = primaryPath is null;
            var waiters = group.Waiters ?? [];
            group.Waiters = null;
            return waiters;
        }
    }

    private sealed class Group
    {
        public string? PrimaryPath { get; set; }

        public bool Failed { get; set; }

        public List<Waiter>? Waiters { get; set; }
    }
}
