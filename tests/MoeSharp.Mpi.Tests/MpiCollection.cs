namespace MoeSharp.Mpi.Tests;

/// <summary>
/// Every class that launches <c>mpiexec</c> joins this collection, so jobs run one at a time: concurrent jobs
/// would oversubscribe small CI machines several times over and stretch the abort and timeout checks.
/// </summary>
[CollectionDefinition(Name)]
public sealed class MpiCollection
{
    /// <summary>The collection's name.</summary>
    public const string Name = "mpiexec";
}
