using Mono.Unix.Native;
using Packet.Agent.Boot;
using Packet.Agent.Exec;
using Packet.Agent.Hooks;
using Packet.Agent.Posix;
using Packet.Agent.Workspace;

namespace Packet.Agent.Steps;

/// <summary>
/// Whom hooks run as, and what they may run: the account comes from the image or --user, never the
/// volume; a hook runs only what that account or root wrote, and as root only what no other account
/// could have changed, every folder above it included.
/// </summary>
public sealed partial class HooksStep
{
    /// <summary>
    /// Whether a folder's entry runs as a hook: (null, null) when it does; else why not, as a note
    /// (it is no hook: not an executable regular file, a symlink not followed, a name that cannot be
    /// passed on) or a refusal (a hook its account may not run).
    /// </summary>
    private static (string? Note, string? Refusal) WhyNotRun(DirectoryHandle folder, string name, string hookName, HookIdentity identity, Func<string, string?>? refuse)
    {
        if (folder.LStat(name, out var stat) < 0 || (stat.st_mode & FilePermissions.S_IFMT) != FilePermissions.S_IFREG || !IsExecutable(stat))
        {
            return ($"skipped {NativeName.Display(hookName)}: not an executable regular file", null);
        }

        if (Unnameable(name) is { } why)
        {
            return ($"skipped {NativeName.Display(hookName)}: {why}; rename it", null);
        }

        return refuse?.Invoke(folder.PathOf(name)) is { } refusal
            ? (null, NotRunAsRoot(hookName, refusal))
            : (null, NotTheAccounts(NativeName.Display(hookName), folder.PathOf(name), stat, identity));
    }

    /// <summary>
    /// Why a hook's name cannot be used: a program's path reaches exec as UTF-8 text, so other bytes
    /// would name another file; and its log's name (<c>first-boot.d-NAME.log</c>) must fit in 255 bytes.
    /// </summary>
    private static string? Unnameable(string name) =>
        !NativeName.IsUtf8(name) ? "its name is not UTF-8, and a hook's path is passed on as UTF-8"
        : System.Text.Encoding.UTF8.GetByteCount(name) > MaxHookNameBytes ? $"its name is longer than {MaxHookNameBytes} bytes, too long for its log's"
        : null;

    /// <summary>
    /// The account hooks run as: the agent itself when it is not root (it can switch to no one);
    /// else the home's account, when it owns the persisted home (or there is none yet). Null when
    /// there is no such account (<see cref="NotRun"/> says why).
    /// </summary>
    private HookIdentity? Identity(DirectoryHandle workspace, AccountChoice choice)
    {
        if (posix.EffectiveUserId != 0)
        {
            return new HookIdentity(posix.EffectiveUserId, posix.EffectiveGroupId);
        }

        if (choice.Account is not { } account)
        {
            return null;
        }

        bool homeThere = workspace.LStat(WorkspaceLayout.Home, out var home) >= 0;
        return !homeThere || ((home.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR && home.st_uid == account.Uid)
            ? new HookIdentity(account.Uid, account.Gid)
            : null;
    }

    /// <summary>Why hooks do not run, and how to fix it: no account, or a persisted home that is not the account's.</summary>
    private static string NotRun(DirectoryHandle workspace, AccountChoice choice)
    {
        string home = workspace.PathOf(WorkspaceLayout.Home);
        if (choice.Account is not { } account)
        {
            return $"hooks not run: there is no account to run them as: {choice.Unknown}";
        }

        workspace.LStat(WorkspaceLayout.Home, out var stat);
        bool directory = (stat.st_mode & FilePermissions.S_IFMT) == FilePermissions.S_IFDIR;
        return $"hooks not run: {home} {(directory ? $"belongs to uid {stat.st_uid}" : "is not a directory (a link, or a file)")}, but the hooks' account is {account}; "
            + $"a user of the volume can rename or link any folder to {WorkspaceLayout.Home}, so hooks never take their account from it. "
            + (directory
                ? $"If the home is right, give it to its account: chown -R {account.Uid}:{account.Gid} {home}; if the account is wrong, name the right one: --user {stat.st_uid}"
                : $"Move it away, and the next boot seeds a home");
    }

    /// <summary>
    /// Why what a hook runs from (its file, its folder) may not run as the hooks' account: it belongs
    /// to a third account, or anyone may write it, so that account, not the hooks', chose what runs.
    /// Its group's write bit is the pod's fsGroup at work, and allowed. Root's hooks answer to the
    /// stricter rule of <see cref="ProgramTrust"/>.
    /// </summary>
    private static string? NotTheAccounts(string subject, string path, in Stat stat, HookIdentity identity)
    {
        string? why = identity.Uid == 0 ? null
            : stat.st_uid != 0 && stat.st_uid != identity.Uid ? $"{NativeName.Display(path)} belongs to uid {stat.st_uid}"
            : (stat.st_mode & FilePermissions.S_IWOTH) != 0 ? $"anyone may write {NativeName.Display(path)} (mode {SafePath.Mode(stat)})"
            : null;
        return why is null ? null
            : $"{subject} not run as uid {identity.Uid}: {why}, and hooks run only what their own account or root wrote; fix: chown {identity.Uid} {NativeName.Display(path)} && chmod o-w {NativeName.Display(path)}";
    }

    private static string NotRunAsRoot(string hook, string refusal) =>
        $"{NativeName.Display(hook)} not run as root: {refusal}; root runs nothing another account could have changed (make it and the folders above it root's, writable by root alone, or run hooks as a user: --user)";
}
