using Mono.Unix.Native;
using Packet.Agent.Posix;
using Packet.Agent.TestSupport;
using Packet.Agent.Workspace;
using Xunit;

namespace Packet.Agent.IntegrationTests;

/// <summary>
/// Root's part of the volume, on a real file system: what the state folders accept, and how the
/// guard takes back one another account could change (an older agent gave it to the home's owner,
/// a user swapped it, fsGroup opened it), moving what it cannot trust aside, never reading it.
/// </summary>
public sealed class StateClaimTests : IDisposable
{
    private const uint User = 1000;
    private readonly TempDirectory _dir = new("state-claim");
    private readonly FaultyPosix _posix = new();

    public StateClaimTests()
    {
        Workspace = _dir.Create("ws");
        State = Path.Join(Workspace, ".packet");
    }

    private string Workspace { get; }

    private string State { get; }

    public void Dispose() => _dir.Dispose();

    private static Stat Look(string path)
    {
        HomeFixture.Check(Syscall.lstat(path, out var stat));
        return stat;
    }

    private static string Mode(string path) => SafePath.Mode(Look(path));

    private ClaimOutcome Claim(FaultyPosix? posix = null, (uint, uint)? account = null)
    {
        posix ??= _posix;
        using var workspace = DirectoryHandle.Open(posix, Workspace);
        var claim = new StateClaim(posix, TimeProvider.System);
        return claim.Apply(workspace, claim.Survey(workspace, account), account);
    }

    private IReadOnlyList<ClaimAction> Survey((uint, uint)? account = null)
    {
        using var workspace = DirectoryHandle.Open(_posix, Workspace);
        return new StateClaim(_posix, TimeProvider.System).Survey(workspace, account);
    }

    [RootFact]
    public void A_fresh_volume_gets_roots_folder_its_lock_and_the_home_accounts_folder()
    {
        Require.Root();

        var outcome = Claim(account: (User, User));

        Assert.Equal([ClaimKind.MakeState, ClaimKind.MakeLock, ClaimKind.MakeAccountFolder], outcome.Done.Select(a => a.Kind));
        Assert.Equal((0u, "0755"), (Look(State).st_uid, Mode(State)));
        Assert.Equal((0u, "0644"), (Look(Path.Join(State, "lock")).st_uid, Mode(Path.Join(State, "lock"))));
        Assert.Equal((User, "0755"), (Look(Path.Join(State, "user-1000")).st_uid, Mode(Path.Join(State, "user-1000"))));
        Assert.Empty(Survey((User, User)));
    }

    [RootFact]
    public void A_folder_root_owns_alone_and_complete_is_left_alone()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "hooks.json", "{}");

        Assert.Empty(Survey((User, User)));
    }

    [RootFact]
    public void What_a_claim_that_stopped_halfway_left_in_roots_own_folder_is_found_at_the_next_boot()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "hooks.json", "{}");
        ChildProcess.MustSucceed("chown", $"{User}:{User}", Path.Join(State, "hooks.json"));
        HomeFixture.Write(State, "last-boot.json", "{}", mode: "666");

        var outcome = Claim(account: (User, User));

        Assert.Equal(
            [(ClaimKind.Tighten, "last-boot.json"), (ClaimKind.GiveToAccount, "hooks.json")],
            outcome.Done.Select(a => (a.Kind, a.Name)).Order());
        Assert.Equal(User, Look(Path.Join(State, "user-1000/hooks.json")).st_uid);
        Assert.Equal("0644", Mode(Path.Join(State, "last-boot.json")));
        Assert.Empty(Survey((User, User)));
    }

    [RootFact]
    public void A_link_planted_at_the_accounts_folder_is_moved_aside_before_the_users_state_goes_there()
    {
        Require.Root();
        HomeFixture.Write(State, "hooks.json", "{}");
        HomeFixture.Symlink(State, "/etc", "user-1000");
        ChildProcess.MustSucceed("chown", "-hR", $"{User}:{User}", State);

        var outcome = Claim(account: (User, User));

        Assert.Equal((0u, "0755"), (Look(State).st_uid, Mode(State)));
        Assert.Single(Directory.GetFileSystemEntries(State, "user-1000.untrusted-*"));
        Assert.Equal(User, Look(Path.Join(State, "user-1000/hooks.json")).st_uid);
        Assert.False(File.Exists(Path.Join(State, "hooks.json")));
        Assert.Empty(Survey((User, User)));
    }

    [RootFact]
    public void A_folder_renamed_into_place_between_the_survey_and_the_claim_is_taken_and_teaches_nothing_about_the_volume()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Check(Syscall.chmod(State, FilePermissions.S_IRWXU | FilePermissions.S_IRWXG | FilePermissions.S_IROTH | FilePermissions.S_IXOTH));
        string users = _dir.Create("ws/users-state");
        HomeFixture.Write(users, "ssh/ssh_host_ed25519_key", "the user's key\n");
        ChildProcess.MustSucceed("chown", "-R", $"{User}:{User}", users);
        HomeFixture.Check(Syscall.chmod(users, FilePermissions.ACCESSPERMS));
        using var workspace = DirectoryHandle.Open(_posix, Workspace);
        var claim = new StateClaim(_posix, TimeProvider.System);
        var planned = claim.Survey(workspace, (User, User));
        Assert.Equal(ClaimKind.Tighten, Assert.Single(planned).Kind);
        // The user swaps its own folder in (a workspace fsGroup makes group-writable lets it).
        HomeFixture.Check(Syscall.rename(State, Path.Join(Workspace, "roots-state")));
        HomeFixture.Check(Syscall.rename(users, State));

        var outcome = claim.Apply(workspace, planned, (User, User));

        Assert.Null(outcome.Trust.VolumeOwner);
        Assert.True(outcome.Trust.KeepsModes);
        Assert.False(outcome.VolumeLearned);
        Assert.True(outcome.Replanned);
        Assert.Equal((0u, 0u, "0755"), (Look(State).st_uid, Look(State).st_gid, Mode(State)));
        Assert.Equal(User, Look(Path.Join(State, "user-1000/ssh/ssh_host_ed25519_key")).st_uid);
        Assert.False(Directory.Exists(Path.Join(State, "ssh")));
    }

    [RootFact]
    public void A_folder_an_older_agent_gave_the_user_is_taken_back_and_the_users_state_goes_to_its_folder()
    {
        Require.Root();
        HomeFixture.Write(State, "hooks.json", "{\"first_boot_succeeded\":{}}");
        HomeFixture.Write(State, "last-boot.json", "{}");
        HomeFixture.Write(State, "logs/setup.sh.log", "ran\n");
        HomeFixture.Write(State, "image-manifest", "root's\n");
        HomeFixture.Write(State, "notes", "the user's own file, not one of root's names\n");
        Directory.CreateDirectory(Path.Join(State, "boot.d"));
        ChildProcess.MustSucceed("chown", "-R", $"{User}:{User}", State);
        ChildProcess.MustSucceed("chown", "0:0", Path.Join(State, "image-manifest"));
        Assert.Equal(0, Syscall.symlink("/etc/shadow", Path.Join(State, "ssh.json")));
        Assert.Equal(0, Syscall.mkfifo(Path.Join(State, "lock"), FilePermissions.S_IRUSR | FilePermissions.S_IWUSR));

        var outcome = Claim();

        Assert.False(outcome.Replanned);
        Assert.Equal((0u, "0755"), (Look(State).st_uid, Mode(State)));
        string users = Path.Join(State, "user-1000");
        Assert.Equal(User, Look(users).st_uid);
        Assert.Equal(["hooks.json", "last-boot.json", "logs"], Directory.GetFileSystemEntries(users).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal("ran\n", File.ReadAllText(Path.Join(users, "logs/setup.sh.log")));
        Assert.Equal("root's\n", File.ReadAllText(Path.Join(State, "image-manifest")));
        Assert.Equal("/etc/shadow", Assert.Single(Directory.GetFileSystemEntries(State, "ssh.json.untrusted-*").Select(p => new FileInfo(p).LinkTarget)));
        Assert.Single(Directory.GetFileSystemEntries(State, "lock.untrusted-*"));
        Assert.Equal(FilePermissions.S_IFREG, Look(Path.Join(State, "lock")).st_mode & FilePermissions.S_IFMT);
        Assert.True(File.Exists(Path.Join(State, "notes")), "an entry that is none of root's names was moved");
        Assert.Equal(User, Look(Path.Join(State, "boot.d")).st_uid);
        Assert.Contains(outcome.Done, a => a is { Kind: ClaimKind.TakeBack, Why: "it belongs to uid 1000" });
    }

    [RootFact]
    public void What_fsgroup_opened_is_closed_again_and_what_others_could_have_changed_or_read_is_set_aside()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "ssh/ssh_host_ed25519_key", "key\n", mode: "600");
        HomeFixture.Write(State, "staging/home/.bashrc", "half a copy\n");
        HomeFixture.Write(State, "last-boot.json", "{}");
        // The kubelet's fsGroup at a mount: group 1000 and its write bit on everything, setgid on folders.
        ChildProcess.MustSucceed("chgrp", "-R", $"{User}", State);
        ChildProcess.MustSucceed("chmod", "-R", "g+rwX", State);
        ChildProcess.MustSucceed("find", State, "-type", "d", "-exec", "chmod", "g+s", "{}", "+");

        var outcome = Claim(account: (User, User));

        Assert.Equal("0755", Mode(State));
        Assert.Equal("0644", Mode(Path.Join(State, "last-boot.json")));
        Assert.False(Directory.Exists(Path.Join(State, "ssh")));
        Assert.Single(Directory.GetDirectories(State, "ssh.untrusted-*"));
        Assert.Single(Directory.GetDirectories(State, "staging.untrusted-*"));
        Assert.Contains(outcome.Done, a => a.Kind == ClaimKind.MoveAside && a.Name == "ssh" && a.Why.StartsWith("it is mode 2775: the host keys in it may have been read by others", StringComparison.Ordinal));
    }

    [RootFact]
    public void Host_keys_in_a_private_folder_are_kept_unless_one_could_have_been_read_or_swapped()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "ssh/ssh_host_ed25519_key", "key\n", mode: "600");
        HomeFixture.Write(State, "ssh/ssh_host_ed25519_key.pub", "key\n", mode: "644");
        HomeFixture.Chmod(State, "ssh", "700");

        Assert.Empty(Survey((User, User)));

        HomeFixture.Chmod(State, "ssh/ssh_host_ed25519_key", "640");
        Assert.Contains(Survey((User, User)), a => a.Kind == ClaimKind.MoveAside && a.Name == "ssh" && a.Why.StartsWith($"{State}/ssh/ssh_host_ed25519_key is uid 0's file, mode 0640: the host keys in it may have been read by others", StringComparison.Ordinal));

        HomeFixture.Chmod(State, "ssh/ssh_host_ed25519_key", "600");
        HomeFixture.Chmod(State, "ssh/ssh_host_ed25519_key.pub", "664");
        Assert.Contains(Survey((User, User)), a => a.Kind == ClaimKind.MoveAside && a.Name == "ssh");

        HomeFixture.Chmod(State, "ssh/ssh_host_ed25519_key.pub", "644");
        HomeFixture.Check(Syscall.link(Path.Join(State, "ssh/ssh_host_ed25519_key"), Path.Join(State, "ssh/another-name")));
        Assert.Contains(Survey((User, User)), a => a.Kind == ClaimKind.MoveAside && a.Name == "ssh");
        File.Delete(Path.Join(State, "ssh/another-name"));

        HomeFixture.Check(Syscall.chown(Path.Join(State, "ssh/ssh_host_ed25519_key.pub"), User, User));
        Assert.Contains(Survey((User, User)), a => a.Kind == ClaimKind.MoveAside && a.Name == "ssh");
    }

    [RootFact]
    public void A_file_of_roots_with_another_name_and_an_unfinished_copy_others_could_write_are_set_aside()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "last-boot.json", "{}");
        HomeFixture.Check(Syscall.link(Path.Join(State, "last-boot.json"), Path.Join(Workspace, "elsewhere")));
        HomeFixture.Write(State, "staging/home/.bashrc", "half a copy\n");
        HomeFixture.Chmod(State, "staging", "757");
        HomeFixture.Write(State, "logs/x.log", "ran\n");
        HomeFixture.Chmod(State, "logs", "757");

        var outcome = Claim(account: (User, User));

        Assert.Contains(outcome.Done, a => a is { Kind: ClaimKind.MoveAside, Name: "last-boot.json", Why: "it has 2 names (a hard link)" });
        Assert.Contains(outcome.Done, a => a is { Kind: ClaimKind.MoveAside, Name: "staging" } && a.Why.StartsWith("others could write into the unfinished copy (mode 0757)", StringComparison.Ordinal));
        Assert.Contains(outcome.Done, a => a is { Kind: ClaimKind.Tighten, Name: "logs" });
        Assert.Equal("0755", Mode(Path.Join(State, "logs")));
        Assert.Equal("{}", File.ReadAllText(Path.Join(Workspace, "elsewhere")));
    }

    [RootFact]
    public void A_state_folder_that_kept_the_pods_group_is_given_to_roots_group()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Check(Syscall.chown(State, 0, User));

        Claim(account: (User, User));

        Assert.Equal((0u, 0u, "0755"), (Look(State).st_uid, Look(State).st_gid, Mode(State)));
        Assert.Empty(Survey((User, User)));
    }

    [RootFact]
    public void What_the_accounts_folder_already_holds_under_the_same_name_is_kept_and_roots_copy_set_aside()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "user-1000/hooks.json", "{\"the users\":1}");
        ChildProcess.MustSucceed("chown", "-R", $"{User}:{User}", Path.Join(State, "user-1000"));
        HomeFixture.Write(State, "hooks.json", "{\"older\":1}");
        HomeFixture.Check(Syscall.chown(Path.Join(State, "hooks.json"), User, User));

        Claim(account: (User, User));

        Assert.Equal("{\"the users\":1}", File.ReadAllText(Path.Join(State, "user-1000/hooks.json")));
        Assert.Equal("{\"older\":1}", File.ReadAllText(Assert.Single(Directory.GetFiles(State, "hooks.json.untrusted-*"))));
        Assert.False(File.Exists(Path.Join(State, "hooks.json")));
    }

    [RootFact]
    public void A_lock_already_there_is_kept_as_it_is()
    {
        Require.Root();
        Claim(account: (User, User));
        HomeFixture.Write(State, "lock", "holder\n", mode: "640");
        Directory.Delete(Path.Join(State, "user-1000"));

        var outcome = Claim(account: (User, User));

        Assert.Equal([ClaimKind.MakeAccountFolder], outcome.Done.Select(a => a.Kind));
        Assert.Equal(("holder\n", "0640"), (File.ReadAllText(Path.Join(State, "lock")), Mode(Path.Join(State, "lock"))));
    }

    [RootFact]
    public void A_state_folder_that_is_a_link_is_moved_aside_and_made_anew()
    {
        Require.Root();
        string elsewhere = _dir.Create("elsewhere");
        HomeFixture.Symlink(Workspace, elsewhere, ".packet");

        Claim();

        Assert.Equal(FilePermissions.S_IFDIR, Look(State).st_mode & FilePermissions.S_IFMT);
        Assert.Equal(elsewhere, new FileInfo(Directory.GetFileSystemEntries(Workspace, ".packet.untrusted-*").Single()).LinkTarget);
        Assert.Empty(Directory.GetFileSystemEntries(elsewhere));
    }

    [RootFact]
    public void An_accounts_folder_of_another_owner_and_a_hook_folder_that_is_a_link_are_moved_aside()
    {
        Require.Root();
        Directory.CreateDirectory(Path.Join(State, "user-1000"));
        ChildProcess.MustSucceed("chown", "-R", $"{User + 1}:{User + 1}", State);
        HomeFixture.Symlink(State, "/etc", "boot.d");

        Claim(account: (User, User));

        Assert.Single(Directory.GetFileSystemEntries(State, "user-1000.untrusted-*"));
        Assert.Single(Directory.GetFileSystemEntries(State, "boot.d.untrusted-*"));
        Assert.Equal(User, Look(Path.Join(State, "user-1000")).st_uid);
    }

    [RootFact]
    public void A_volume_that_gives_roots_files_to_another_uid_is_trusted_with_that_uid_and_said_so()
    {
        Require.Root();
        // NFS root_squash: root's chown is refused, and what root makes belongs to the anonymous uid.
        Directory.CreateDirectory(State);
        HomeFixture.Write(State, "lock", string.Empty);
        HomeFixture.Write(State, "ssh/ssh_host_ed25519_key", "key\n", mode: "600");
        HomeFixture.Write(State, "ssh/ssh_host_ed25519_key.pub", "key\n", mode: "644");
        HomeFixture.Chmod(State, "ssh", "700");
        ChildProcess.MustSucceed("chown", "-R", $"{Platform.Nobody}:{Platform.Nobody}", State);
        var squashed = new FaultyPosix((call, _) => call == "fchown" ? Errno.EPERM : null);

        var outcome = Claim(squashed);

        Assert.Equal(Platform.Nobody, outcome.Trust.VolumeOwner);
        Assert.True(outcome.Trust.KeepsModes);
        Assert.True(outcome.Replanned);
        Assert.DoesNotContain(outcome.Done, a => a.Kind == ClaimKind.GiveToAccount);
        // Root's host keys there are the squashed uid's too: kept, not made anew at every boot.
        Assert.DoesNotContain(outcome.Done, a => a.Kind == ClaimKind.MoveAside);
        Assert.True(File.Exists(Path.Join(State, "ssh/ssh_host_ed25519_key")));
        using var workspace = DirectoryHandle.Open(squashed, Workspace);
        workspace.TrustAs(outcome.Trust);
        using var state = StateFolder.TryOpenShared(squashed, workspace);
        Assert.NotNull(state);
    }

    [RootFact]
    public void On_a_volume_that_keeps_no_modes_the_write_bits_it_shows_are_not_held_against_roots_state()
    {
        Require.Root();
        using var exfat = new TestVolume(VolumeKind.Exfat, size: "16M");
        string workspace = exfat.Create("ws");
        var posix = new FaultyPosix();
        using var open = DirectoryHandle.Open(posix, workspace);
        var claim = new StateClaim(posix, TimeProvider.System);

        var outcome = claim.Apply(open, claim.Survey(open, null), null);
        HomeFixture.Write(workspace, ".packet/ssh/ssh_host_ed25519_key", "key\n");
        using var again = DirectoryHandle.Open(posix, workspace);
        var second = claim.Apply(again, claim.Survey(again, null), null);

        Assert.False(outcome.Trust.KeepsModes);
        Assert.False(second.Trust.KeepsModes);
        Assert.Equal("0777", Mode(Path.Join(workspace, ".packet")));
        Assert.DoesNotContain(second.Done, a => a.Kind == ClaimKind.MoveAside);
        Assert.True(File.Exists(Path.Join(workspace, ".packet/ssh/ssh_host_ed25519_key")));
        using (var trusted = StateFolder.TryOpenShared(posix, again))
        {
            Assert.NotNull(trusted);
        }

        // A handle the guard has not looked through knows nothing of the volume: there the bits count.
        using var unknown = DirectoryHandle.Open(posix, workspace);
        Assert.Throws<UnsafeWorkspaceException>(() => StateFolder.TryOpenShared(posix, unknown));
    }

    [RootFact]
    public void Each_state_folder_is_refused_when_another_account_could_change_it()
    {
        Require.Root();
        Claim(account: (User, User));
        using var workspace = DirectoryHandle.Open(_posix, Workspace);
        using (var shared = StateFolder.TryOpenShared(_posix, workspace))
        {
            Assert.NotNull(shared);
        }

        using (var account = StateFolder.TryOpenAccount(_posix, workspace, User))
        {
            Assert.Equal(Path.Join(State, "user-1000"), account?.Path);
        }

        Assert.Null(StateFolder.TryOpenAccount(_posix, workspace, User + 1));
        ChildProcess.MustSucceed("chown", $"{User + 1}", Path.Join(State, "user-1000"));
        var theirs = Assert.Throws<UnsafeWorkspaceException>(() => StateFolder.TryOpenAccount(_posix, workspace, User));
        Assert.Equal($"refusing {State}/user-1000: it belongs to uid 1001, not to uid 1000 whose folder it is", theirs.Message);

        ChildProcess.MustSucceed("chmod", "g+w", State);
        var open = Assert.Throws<UnsafeWorkspaceException>(() => StateFolder.TryOpenShared(_posix, workspace));
        Assert.Equal($"refusing {State}: it is writable by its group (gid 0), mode 0775 (root keeps its state only where no other account can write; a root boot takes it back)", open.Message);

        ChildProcess.MustSucceed("chown", $"{User}", State);
        var given = Assert.Throws<UnsafeWorkspaceException>(() => StateFolder.CreateShared(_posix, workspace));
        Assert.StartsWith($"refusing {State}: it belongs to uid 1000 (root keeps its state", given.Message, StringComparison.Ordinal);
    }

    [RootFact]
    public void An_agent_that_is_not_root_keeps_its_state_in_its_own_folder_and_takes_roots_lock_read_only()
    {
        Require.Root();
        Claim(account: (User, User));
        var user = new FaultyPosix { SeenAsUser = User };
        using var workspace = DirectoryHandle.Open(user, Workspace);

        using (var own = StateFolder.CreateOwn(user, workspace))
        {
            Assert.Equal(Path.Join(State, "user-1000"), own.Path);
        }

        using (var shared = StateFolder.TryOpenShared(user, workspace))
        {
            Assert.NotNull(shared);
        }

        ChildProcess.MustSucceed("chown", $"{User + 1}", State);
        Assert.Throws<UnsafeWorkspaceException>(() => StateFolder.TryOpenShared(user, workspace));
    }
}
