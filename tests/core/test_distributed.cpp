// The communicator in one process: the launcher's variables (Note [launch by mpirun] in core/distributed.h), the
// world of one, and NCCL in a world of one on a GPU. The collectives between processes are tested under mpirun by
// tests/mpi/ (sieve_mpi_tests, ctest Distributed.MpiCollectives).
#include <stdlib.h>

#include <cstdint>
#include <initializer_list>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/distributed.h"
#include "core/random.h"
#include "tests/test_util.h"

namespace sieve {
namespace {

using testing::GpuTest;
using testing::throws_error;

// Unsets every launcher variable detect() reads, sets the given ones, and puts everything back afterwards.
class ScopedLauncherVariables {
 public:
  // Pairs of C strings, not a std::map: a braced pair {"A", "1"} would also match a map's iterator-pair constructor.
  explicit ScopedLauncherVariables(std::initializer_list<std::pair<const char*, const char*>> set = {}) {
    for (const char* name : kNames) {
      const char* value = std::getenv(name);
      saved_[name] = value ? std::optional<std::string>(value) : std::nullopt;
      unsetenv(name);
    }
    for (const auto& [name, value] : set) {
      EXPECT_TRUE(saved_.count(name)) << name << " is not a launcher variable that detect() reads";
      setenv(name, value, 1);
    }
  }
  ~ScopedLauncherVariables() {
    for (const auto& [name, value] : saved_) {
      if (value)
        setenv(name.c_str(), value->c_str(), 1);
      else
        unsetenv(name.c_str());
    }
  }
  ScopedLauncherVariables(const ScopedLauncherVariables&) = delete;
  ScopedLauncherVariables& operator=(const ScopedLauncherVariables&) = delete;

 private:
  static constexpr const char* kNames[] = {"OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE", "OMPI_COMM_WORLD_LOCAL_RANK",
                                           "PMI_RANK",             "PMI_SIZE",             "MPI_LOCALRANKID",
                                           "SLURM_PROCID",         "SLURM_NTASKS",         "SLURM_LOCALID",
                                           "PMIX_RANK"};
  std::map<std::string, std::optional<std::string>> saved_;
};

void expect_environment(const DistributedEnvironment& env, int rank, int size, int local_rank, bool launched) {
  EXPECT_EQ(env.rank, rank);
  EXPECT_EQ(env.size, size);
  EXPECT_EQ(env.local_rank, local_rank);
  EXPECT_EQ(env.launched, launched);
}

TEST(DistributedEnvironment, WithoutLauncherIsWorldOfOne) {
  ScopedLauncherVariables vars;
  expect_environment(DistributedEnvironment::detect(), 0, 1, 0, false);
}

TEST(DistributedEnvironment, ReadsOpenMpi) {
  ScopedLauncherVariables vars(
      {{"OMPI_COMM_WORLD_RANK", "3"}, {"OMPI_COMM_WORLD_SIZE", "4"}, {"OMPI_COMM_WORLD_LOCAL_RANK", "1"}});
  expect_environment(DistributedEnvironment::detect(), 3, 4, 1, true);
}

TEST(DistributedEnvironment, OpenMpiComesBeforePmix) {
  // Open MPI's mpirun sets PMIX_RANK too, and Slurm's variables may be there from the allocation.
  ScopedLauncherVariables vars({{"OMPI_COMM_WORLD_RANK", "1"},
                                {"OMPI_COMM_WORLD_SIZE", "2"},
                                {"PMIX_RANK", "1"},
                                {"SLURM_PROCID", "0"},
                                {"SLURM_NTASKS", "8"}});
  expect_environment(DistributedEnvironment::detect(), 1, 2, 0, true);
}

TEST(DistributedEnvironment, ReadsMpichHydra) {
  ScopedLauncherVariables vars({{"PMI_RANK", "2"}, {"PMI_SIZE", "3"}, {"MPI_LOCALRANKID", "2"}});
  expect_environment(DistributedEnvironment::detect(), 2, 3, 2, true);
}

TEST(DistributedEnvironment, ReadsSlurmOnlyForAnMpiLaunch) {
  {
    // A batch script running the program directly: Slurm's variables describe the allocation, not a launch.
    ScopedLauncherVariables vars({{"SLURM_PROCID", "1"}, {"SLURM_NTASKS", "2"}, {"SLURM_LOCALID", "1"}});
    expect_environment(DistributedEnvironment::detect(), 0, 1, 0, false);
  }
  {
    // srun --mpi=pmix.
    ScopedLauncherVariables vars(
        {{"SLURM_PROCID", "5"}, {"SLURM_NTASKS", "8"}, {"SLURM_LOCALID", "1"}, {"PMIX_RANK", "5"}});
    expect_environment(DistributedEnvironment::detect(), 5, 8, 1, true);
  }
  {
    // srun --mpi=pmi2 sets PMI_RANK and PMI_SIZE; the local rank comes from Slurm.
    ScopedLauncherVariables vars({{"PMI_RANK", "3"}, {"PMI_SIZE", "4"}, {"SLURM_LOCALID", "1"}});
    expect_environment(DistributedEnvironment::detect(), 3, 4, 1, true);
  }
}

TEST(DistributedEnvironment, RefusesMalformedVariables) {
  {
    ScopedLauncherVariables vars({{"OMPI_COMM_WORLD_RANK", "one"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
    EXPECT_TRUE(throws_error([] { DistributedEnvironment::detect(); },
                             {"OMPI_COMM_WORLD_RANK is 'one'", "expected a non-negative integer"}));
  }
  {
    ScopedLauncherVariables vars({{"OMPI_COMM_WORLD_RANK", "2"}, {"OMPI_COMM_WORLD_SIZE", "2"}});
    EXPECT_TRUE(throws_error([] { DistributedEnvironment::detect(); }, {"rank 2 of 2", "below the size"}));
  }
  {
    ScopedLauncherVariables vars({{"PMI_RANK", "0"}});
    EXPECT_TRUE(throws_error([] { DistributedEnvironment::detect(); }, {"PMI_SIZE is not set", "PMI_RANK"}));
  }
  {
    ScopedLauncherVariables vars({{"PMI_RANK", "0"}, {"PMI_SIZE", "-2"}});
    EXPECT_TRUE(throws_error([] { DistributedEnvironment::detect(); }, "PMI_SIZE is '-2'"));
  }
}

TEST(Communicator, WithoutLauncherIsLocal) {
  ScopedLauncherVariables vars;
  const auto comm = make_communicator(DistributedEnvironment::detect(), Device::cpu());
  EXPECT_EQ(comm->backend(), "local");
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  EXPECT_TRUE(comm->is_root());
  EXPECT_EQ(comm->device(), Device::cpu());
  // A world of one reports the training device it was made for.
  EXPECT_EQ(make_communicator(DistributedEnvironment{}, Device::cuda(0))->device(), Device::cuda(0));
  DistributedEnvironment several;
  several.size = 2;
  EXPECT_TRUE(throws_error([&] { make_communicator(several, Device::cpu()); }, "needs a launcher"));
}

// A launched run needs the backend; a build without it says what to install. (A build with MPI would initialise it
// here, which belongs to sieve_mpi_tests.)
TEST(Communicator, BuildWithoutMpiSaysSo) {
  if (built_with_mpi()) GTEST_SKIP() << "this build has MPI: tests/mpi/ runs it under mpirun";
  DistributedEnvironment launched;
  launched.launched = true;
  EXPECT_TRUE(throws_error([&] { make_communicator(launched, Device::cpu()); }, "built without MPI"));
}

// Random values of each dtype, never zeros.
std::vector<Tensor> random_inputs(uint64_t seed) {
  Generator gen(seed);
  Tensor f = uniform({4, 3}, gen, Device::cpu(), -2.f, 2.f);
  std::vector<int32_t> i32;
  std::vector<int64_t> i64;
  for (float v : f.to_vector<float>()) {
    i32.push_back(static_cast<int32_t>(v * 1000) + 7);
    i64.push_back(static_cast<int64_t>(v * 1000) * (int64_t{1} << 33) + 7);
  }
  return {f, Tensor::from_vector(i32, {4, 3}), Tensor::from_vector(i64, {4, 3})};
}

void expect_same_values(const Tensor& actual, const Tensor& expected) {
  ASSERT_EQ(actual.dtype(), expected.dtype());
  ASSERT_EQ(actual.shape(), expected.shape());
  const Tensor a = actual.to(Device::cpu()), e = expected.to(Device::cpu());
  switch (e.dtype()) {
    case DType::F32: EXPECT_EQ(a.to_vector<float>(), e.to_vector<float>()); break;
    case DType::I32: EXPECT_EQ(a.to_vector<int32_t>(), e.to_vector<int32_t>()); break;
    case DType::I64: EXPECT_EQ(a.to_vector<int64_t>(), e.to_vector<int64_t>()); break;
    case DType::U8: FAIL() << "not a collective dtype";
  }
}

// Every collective of `comm`, a world of one on `device`, leaves random values as they were.
void expect_world_of_one_keeps_values(Communicator& comm, Device device) {
  ASSERT_EQ(comm.size(), 1);
  ASSERT_EQ(comm.rank(), 0);
  for (const Tensor& host : random_inputs(41)) {
    SCOPED_TRACE(host.description());
    const Tensor original = host.clone();
    Tensor t = host.to(device).clone();
    for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) {
      if (op == ReduceOp::Avg && t.dtype() != DType::F32) continue;
      comm.all_reduce(t, op);
      expect_same_values(t, original);
    }
    comm.broadcast(t, 0);
    expect_same_values(t, original);
    expect_same_values(comm.all_gather(t), original);
  }
  Tensor grads = testing::random_tensor({257}, 43, device);
  const Tensor expected = grads.to(Device::cpu()).clone();
  auto sum = comm.all_reduce_async(grads, ReduceOp::Sum);
  sum->wait();
  auto avg = comm.all_reduce_async(grads, ReduceOp::Avg);
  avg->wait();
  avg->wait();  // a second wait does nothing
  expect_same_values(grads, expected);

  std::vector<double> values = {0.25, -3.5, 1e10};
  for (ReduceOp op : {ReduceOp::Sum, ReduceOp::Avg, ReduceOp::Max, ReduceOp::Min}) comm.all_reduce(values, op);
  comm.broadcast(values, 0);
  EXPECT_EQ(values, (std::vector<double>{0.25, -3.5, 1e10}));
  std::string bytes("a\0b", 3);
  comm.broadcast(bytes, 0);
  EXPECT_EQ(bytes, std::string("a\0b", 3));
  EXPECT_EQ(comm.gather(bytes, 0), std::vector<std::string>{bytes});
  comm.barrier();
}

TEST(Communicator, LocalCollectivesKeepValues) {
  const auto comm = local_communicator();
  EXPECT_EQ(comm->backend(), "local");
  EXPECT_EQ(comm->device(), Device::cpu());
  expect_world_of_one_keeps_values(*comm, Device::cpu());
  // all_gather in a world of one returns its input itself.
  Tensor t = testing::random_tensor({2, 2}, 5);
  EXPECT_TRUE(comm->all_gather(t).same_storage(t));
}

// The local communicator refuses what every backend refuses, so that a mistake shows in a world of one too.
TEST(Communicator, LocalRefusesWhatEveryBackendRefuses) {
  const auto comm = local_communicator();
  Tensor ints = Tensor::from_vector<int64_t>({1, 2, 3}, {3});
  EXPECT_TRUE(throws_error([&] { comm->all_reduce(ints, ReduceOp::Avg); },
                           {"all_reduce: ReduceOp::Avg needs a float32 tensor", "int64[3]"}));
  Tensor bytes = Tensor::zeros({2}, DType::U8);
  EXPECT_TRUE(throws_error([&] { comm->all_reduce(bytes, ReduceOp::Sum); },
                           {"all_reduce: expected a float32, int32 or int64 tensor", "uint8"}));
  Tensor f = testing::random_tensor({2}, 6);
  EXPECT_TRUE(throws_error([&] { comm->broadcast(f, 1); }, "broadcast: root 1 is not a rank of this run of 1"));
  EXPECT_TRUE(throws_error([&] { comm->gather("x", -1); }, "gather: root -1"));
  Tensor undefined;
  EXPECT_TRUE(throws_error([&] { comm->all_gather(undefined); }, "all_gather: the tensor is undefined"));
  Tensor i32 = Tensor::from_vector<int32_t>({1, 2}, {2});
  EXPECT_TRUE(throws_error([&] { comm->all_reduce_async(i32, ReduceOp::Sum); }, "expected a float32 tensor"));
}

TEST(CommunicatorDeathTest, LocalAbortExitsWithStatus) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(local_communicator()->abort(7), ::testing::ExitedWithCode(7), "");
}

// NCCL in a world of one on cuda:0: the NCCL code path (unique id, communicator, streams and events, every call's
// status) on a single GPU. Values must come back unchanged.
class NcclCommunicator : public GpuTest {};

TEST_F(NcclCommunicator, WorldOfOneKeepsValues) {
  if (!built_with_nccl()) {
    EXPECT_TRUE(throws_error([] { nccl_single_process_communicator(Device::cuda(0)); }, "built without NCCL"));
    return;
  }
  const auto comm = nccl_single_process_communicator(Device::cuda(0));
  EXPECT_EQ(comm->backend(), "nccl");
  EXPECT_EQ(comm->device(), Device::cuda(0));
  expect_world_of_one_keeps_values(*comm, Device::cuda(0));

  // all_gather makes a new tensor on the device.
  Tensor t = testing::random_tensor({3, 2}, 8, Device::cuda(0));
  Tensor gathered = comm->all_gather(t);
  EXPECT_FALSE(gathered.same_storage(t));
  EXPECT_EQ(gathered.device(), Device::cuda(0));
  expect_same_values(gathered, t);
  // A scalar gathers into [size].
  Tensor scalar = Tensor::scalar(2.5f, Device::cuda(0));
  EXPECT_EQ(comm->all_gather(scalar).shape(), (Shape{1}));

  // A buffer written on the compute stream, reduced on the communicator's stream, then read on the compute stream
  // (in a world of one NCCL may move nothing, so this exercises the calls, streams and events, not the ordering).
  Tensor bucket = Tensor::zeros({1 << 20}, DType::F32, Device::cuda(0));
  const Tensor values = testing::random_tensor({1 << 20}, 9, Device::cuda(0));
  bucket.copy_(values);
  auto pending = comm->all_reduce_async(bucket, ReduceOp::Avg);
  pending->wait();
  expect_same_values(bucket.clone(), values);
  // Destroyed without wait(), it waits itself.
  pending = comm->all_reduce_async(bucket, ReduceOp::Sum);
  pending.reset();
  expect_same_values(bucket, values);
}

TEST_F(NcclCommunicator, RefusesTensorsOfOtherDevices) {
  if (!built_with_nccl()) GTEST_SKIP() << "this build has no NCCL";
  const auto comm = nccl_single_process_communicator(Device::cuda(0));
  Tensor host = testing::random_tensor({4}, 10);
  EXPECT_TRUE(throws_error([&] { comm->all_reduce(host, ReduceOp::Sum); },
                           {"all_reduce: the tensor is float32[4] on cpu", "moves tensors on cuda:0"}));
  Tensor ints = Tensor::from_vector<int32_t>({1, 2}, {2}, Device::cuda(0));
  EXPECT_TRUE(throws_error([&] { comm->all_reduce(ints, ReduceOp::Avg); }, "ReduceOp::Avg needs a float32 tensor"));
  EXPECT_TRUE(
      throws_error([] { nccl_single_process_communicator(Device::cpu()); }, "the NCCL backend moves GPU tensors"));
}

}  // namespace
}  // namespace sieve
