<?php
// Writes a PHP session through the session handler configured with -d flags
// (session.save_handler, session.save_path, ...); run by php_clients.php:
//
//   php -d session.save_handler=memcached -d session.save_path=HOST:PORT \
//       php_session_write.php SESSION_ID PAYLOAD
//
// Prints `written SESSION_ID` and exits 0 when session_write_close succeeded.

if ($argc != 3) {
    fwrite(STDERR, "usage: php_session_write.php SESSION_ID PAYLOAD\n");
    exit(2);
}
ini_set('session.use_cookies', '0');
ini_set('session.use_strict_mode', '0');
session_id($argv[1]);
if (!session_start()) {
    fwrite(STDERR, "session_start failed\n");
    exit(1);
}
$_SESSION['payload'] = $argv[2];
$_SESSION['binary'] = "\0\r\n\xff";
$_SESSION['reads'] = 0;
if (!session_write_close()) {
    fwrite(STDERR, "session_write_close failed\n");
    exit(1);
}
echo "written {$argv[1]}\n";
